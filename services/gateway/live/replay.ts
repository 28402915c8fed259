import type { JetStreamManager } from "@nats-io/jetstream";
import { readAfter } from "../../../events/stream-reader";
import { decode, streamState, type Pump } from "./pump";
import { eventFrame, gapFrame } from "./protocol";

/** Where a resuming subscription sends its frames and how it joins the live topic. */
export interface ResumeTarget {
	/** False when the socket is gone (or was cut off): the replay stops. */
	send(frame: string): boolean;
	/** Subscribes the socket to the live topic; called in the same tick as the check that nothing is left to replay. */
	join(): void;
	/** False once the socket closed or unsubscribed meanwhile. */
	wanted(): boolean;
}

const BATCH = 256;

/**
 * Resumes a subscription after `offset`: replays the topic's messages (offset, L] to this socket alone, L being the
 * pump's last handled sequence, then joins the live topic. The join happens in the tick in which the next stored
 * message is found to lie beyond L (or none is left up to L): the pump has not published it yet, so the socket gets
 * it live — no gap, no duplicate, however far L moves during the replay. Says so with a `gap` when the resume cannot
 * be complete: another stream incarnation, history already deleted, or more than `maxReplay` messages missed.
 */
export async function resume(jsm: JetStreamManager, pump: Pump, offset: number, epoch: string | undefined, maxReplay: number, target: ResumeTarget): Promise<void> {
	const { topic, stream, filter } = pump.source;
	if (epoch !== undefined && epoch !== pump.epoch) {
		target.send(gapFrame(topic, "epoch_changed", "The stream was recreated since your offset, so what you missed cannot be replayed; live events continue from here.", pump.epoch, pump.last));
		return target.join();
	}
	let cursor = offset;
	const { firstSeq } = await streamState(jsm, stream);
	if (cursor + 1 < firstSeq) {
		cursor = firstSeq - 1;
		if (!target.send(gapFrame(topic, "history_gone", `Messages up to offset ${cursor} are no longer kept; what is still kept follows, then live events.`, pump.epoch, cursor))) return;
	}
	let replayed = 0;
	for (;;) {
		if (!target.wanted()) return;
		if (cursor >= pump.last) return target.join();
		const handled = pump.last;
		const { messages, next } = await readAfter(jsm, stream, filter, cursor, BATCH);
		for (const m of messages) {
			const data = decode(m.data);
			const kind = data === undefined ? undefined : await pump.source.kindOf({ seq: m.seq, subject: m.subject, data });
			// Checked after the await, in the tick of the send or join: L may have moved meanwhile.
			if (!target.wanted()) return;
			if (m.seq > pump.last) return target.join();
			if (kind !== undefined) {
				if (replayed === maxReplay) {
					target.send(gapFrame(topic, "history_gone", `More than ${maxReplay} messages were missed, too many to replay; live events continue from here.`, pump.epoch, pump.last));
					return target.join();
				}
				if (!target.send(eventFrame(topic, m.seq, pump.epoch, kind, data))) return;
				replayed++;
			}
			cursor = m.seq;
		}
		// The read reached the end of the stream: every message of the topic the pump had handled when it started
		// (up to `handled`) was in it, so nothing before `handled` is left to replay.
		if (next === null) cursor = Math.max(cursor, handled);
	}
}
