import { JetStreamApiError, type JetStreamClient, type JetStreamManager, type JsMsg, type StoredMsg } from "@nats-io/jetstream";

/**
 * Reading what a stream holds: message by message with direct get (any replica answers, no consumer state), or all
 * of it in order through an ordered consumer (a replay).
 */

export function isNoMessage(err: unknown): boolean {
	return err instanceof JetStreamApiError && err.code === 10037; // no message found
}

/**
 * Up to `limit` messages on `filter` after sequence `afterSeq`, oldest first; `next` continues the listing and is
 * null when the stream had no more.
 */
export async function readAfter(
	jsm: JetStreamManager,
	stream: string,
	filter: string,
	afterSeq: number,
	limit: number,
): Promise<{ messages: StoredMsg[]; next: number | null }> {
	const messages: StoredMsg[] = [];
	let cursor = afterSeq;
	while (messages.length < limit) {
		const m = await jsm.direct.getMessage(stream, { seq: cursor + 1, next_by_subj: filter });
		if (!m) break;
		messages.push(m);
		cursor = m.seq;
	}
	return { messages, next: messages.length === limit ? cursor : null };
}

/** The newest message on `subject`, if any. */
export async function lastOnSubject(jsm: JetStreamManager, stream: string, subject: string): Promise<StoredMsg | undefined> {
	try {
		return (await jsm.direct.getMessage(stream, { last_by_subj: subject })) ?? undefined;
	} catch (err) {
		if (isNoMessage(err)) return undefined;
		throw err;
	}
}

export interface ReadOptions {
	/** One subject filter (nats-server 2.9 takes one per consumer). */
	filter: string;
	/** Only messages stored at or after this time. */
	since?: Date;
	/** Gives up waiting after this long without a message (messages counted at the start may have expired since). */
	idleMs?: number;
}

/**
 * Reads, in stream order, the messages matching `filter` that the stream holds when the call starts, through an
 * ordered consumer (ephemeral, flow-controlled, no acks); what arrives meanwhile is left to the durable consumers.
 * Returns how many were read.
 */
export async function readStoredMessages(
	js: JetStreamClient,
	stream: string,
	opts: ReadOptions,
	each: (m: JsMsg) => void | Promise<void>,
): Promise<number> {
	const consumer = await js.consumers.getPushConsumer(stream, {
		filter_subjects: opts.filter,
		...(opts.since ? { opt_start_time: opts.since.toISOString() } : {}),
	});
	// Pending at creation counts exactly the stored matches: reading that many ends at "now".
	const total = (await consumer.info(true)).num_pending;
	let read = 0;
	let watchdog: NodeJS.Timeout | undefined;
	try {
		if (total === 0) return 0;
		const messages = await consumer.consume();
		const idleMs = opts.idleMs ?? 5_000;
		let lastAt = Date.now();
		watchdog = setInterval(() => {
			if (Date.now() - lastAt > idleMs) messages.stop();
		}, Math.min(1_000, idleMs));
		for await (const m of messages) {
			lastAt = Date.now();
			await each(m);
			// pending 0: the end of the stream, sooner than `total` if messages expired meanwhile.
			if (++read >= total || m.info.pending === 0) break;
		}
		return read;
	} finally {
		clearInterval(watchdog);
		await consumer.delete().catch(() => undefined);
	}
}
