import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { BusLog } from "../../../lib/bus";
import { eventFrame } from "./protocol";
import type { StreamMessage, TopicSource } from "./topics";

/** A stream incarnation: its creation time, so a stream deleted and recreated (sequences restarting) is told apart. */
export async function streamState(jsm: JetStreamManager, stream: string): Promise<{ epoch: string; firstSeq: number; lastSeq: number }> {
	const info = await jsm.streams.info(stream);
	return { epoch: info.created, firstSeq: info.state.first_seq, lastSeq: info.state.last_seq };
}

/** A stream message's payload, or undefined when it is not JSON (nothing a client could read). */
export function decode(data: Uint8Array): unknown {
	try {
		return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
	} catch {
		return undefined;
	}
}

const PULL_EXPIRES_MS = 5_000;

/** What a feed does with what it reads: publish a frame to the topic's sockets, or report that it ended. */
export interface FeedOutput {
	publish(frame: string): void;
	/** The feed stopped for good (its stream gone or recreated, or the consumer failed): its sockets must know. */
	ended(reason: string): void;
}

/**
 * One topic's feed from its stream: an ordered consumer from just after the stream's last sequence at start, each
 * message of the topic published once to every subscribed socket. `last` is the newest stream sequence handled
 * (published or filtered out); it moves in the same tick as the publish, which is what lets a resuming socket join
 * without gap or duplicate (see replay.ts). Offsets are only meaningful within one stream incarnation: when the
 * ordered consumer is recreated, the stream is checked before anything more is published, and a feed whose stream
 * was deleted or recreated ends instead of labelling the new stream's sequences with the old epoch.
 */
export class Pump {
	private messages?: ConsumerMessages;
	private stopped = false;
	/** Set while the stream is being checked after the consumer was recreated: publishing waits for it. */
	private checking?: Promise<void>;

	private constructor(
		readonly source: TopicSource,
		readonly epoch: string,
		public last: number,
		private readonly out: FeedOutput,
		private readonly jsm: JetStreamManager,
		private readonly log: BusLog,
	) {}

	static async start(js: JetStreamClient, jsm: JetStreamManager, source: TopicSource, out: FeedOutput, log: BusLog): Promise<Pump> {
		const { epoch, lastSeq } = await streamState(jsm, source.stream);
		const pump = new Pump(source, epoch, lastSeq, out, jsm, log);
		const consumer = await js.consumers.get(source.stream, {
			filter_subjects: source.filter,
			deliver_policy: DeliverPolicy.StartSequence,
			opt_start_seq: lastSeq + 1,
		});
		// Short pulls: a lost stream or server is noticed (missed heartbeats) within seconds, not the default 30 s.
		pump.messages = await consumer.consume({ expires: PULL_EXPIRES_MS });
		void pump.watch();
		void pump.run();
		return pump;
	}

	private async run(): Promise<void> {
		try {
			for await (const m of this.messages!) {
				await this.checking;
				const message: StreamMessage = { seq: m.seq, subject: m.subject, data: decode(m.data) };
				const kind = message.data === undefined ? undefined : await this.source.kindOf(message);
				if (this.stopped) return;
				if (kind !== undefined) this.out.publish(eventFrame(this.source.topic, message.seq, this.epoch, kind, message.data));
				this.last = message.seq;
			}
			if (!this.stopped) this.end("its consumer closed");
		} catch (err) {
			if (!this.stopped) this.end((err as Error).message);
		}
	}

	/** After the ordered consumer is recreated (a reconnect, a lost stream), checks that the stream is still the same one. */
	private async watch(): Promise<void> {
		for await (const s of this.messages!.status()) {
			if (this.stopped) return;
			if (s.type !== "ordered_consumer_recreated" && s.type !== "stream_not_found") continue;
			this.checking = streamState(this.jsm, this.source.stream).then(
				(now) => {
					if (now.epoch !== this.epoch) this.end(`stream ${this.source.stream} was recreated`);
				},
				() => this.end(`stream ${this.source.stream} is gone`),
			);
		}
	}

	private end(reason: string): void {
		if (this.stopped) return;
		this.log.warn(`live: the feed of ${this.source.topic} ended: ${reason}`);
		void this.stop();
		this.out.ended(reason);
	}

	async stop(): Promise<void> {
		this.stopped = true;
		await this.messages?.close().catch(() => undefined);
	}
}

/** Pumps shared by topic: started by the first subscriber, stopped when the last one leaves. */
export class Pumps {
	private readonly entries = new Map<string, { refs: number; pump: Promise<Pump> }>();

	constructor(private readonly start: (source: TopicSource) => Promise<Pump>) {}

	acquire(source: TopicSource): Promise<Pump> {
		const entry = this.entries.get(source.topic);
		if (entry) {
			entry.refs++;
			return entry.pump;
		}
		const pump = this.start(source);
		this.entries.set(source.topic, { refs: 1, pump });
		// A feed that failed to start is forgotten, so the next subscriber tries again.
		pump.catch(() => this.entries.get(source.topic)?.pump === pump && this.entries.delete(source.topic));
		return pump;
	}

	/** Drops a feed that ended by itself (the sockets were told): the next subscriber starts a new one. */
	forget(topic: string): void {
		this.entries.delete(topic);
	}

	release(topic: string): void {
		const entry = this.entries.get(topic);
		if (!entry || --entry.refs > 0) return;
		this.entries.delete(topic);
		void entry.pump.then((p) => p.stop(), () => undefined);
	}

	/** How many topics have a running feed (for tests and the benchmark). */
	get size(): number {
		return this.entries.size;
	}

	async stopAll(): Promise<void> {
		const all = [...this.entries.values()];
		this.entries.clear();
		await Promise.all(all.map((e) => e.pump.then((p) => p.stop(), () => undefined)));
	}
}
