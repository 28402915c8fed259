import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import type { AckedPublisher } from "../../events/acked-publisher";
import { HEADERS } from "../../events/headers";
import { STREAMS } from "../../events/streams";
import { isNoMessage, readAfter } from "../../events/stream-reader";
import { parseDeadLetterSubject, subjects } from "../../events/subjects";
import { readDeadLetter, replayMessageId, summarize, type DeadLetter } from "./dead-letter";

const STREAM = STREAMS.deadLetters.name;

function headerRecord(h: MsgHdrs | undefined): Record<string, string[]> {
	const out: Record<string, string[]> = {};
	for (const [k, values] of h ?? []) out[k] = [...values];
	return out;
}

function toDeadLetter(m: StoredMsg): DeadLetter {
	return readDeadLetter({ seq: m.seq, subject: m.subject, time: m.time, headers: headerRecord(m.header), data: m.data });
}

export interface ListQuery {
	stream?: string;
	consumer?: string;
	after_seq: number;
	limit: number;
}

/** The dead-letter stream, read and replayed through JetStream. */
export class DeadLetterStore {
	constructor(
		private readonly acked: AckedPublisher,
		private readonly jsm: JetStreamManager,
	) {}

	private filter(q: Pick<ListQuery, "stream" | "consumer">): string {
		if (q.stream && q.consumer) return subjects.deadLetter(q.stream, q.consumer);
		if (q.stream) return subjects.deadLettersOfStream(q.stream);
		if (q.consumer) return subjects.deadLettersOfConsumer(q.consumer);
		return subjects.allDeadLetters();
	}

	/** Oldest first from `after_seq`; `next_after_seq` continues the listing. */
	async list(q: ListQuery): Promise<{ items: DeadLetter[]; next_after_seq: number | null }> {
		const { messages, next } = await readAfter(this.jsm, STREAM, this.filter(q), q.after_seq, q.limit);
		return { items: messages.map(toDeadLetter), next_after_seq: next };
	}

	async get(seq: number): Promise<DeadLetter | undefined> {
		try {
			const m = await this.jsm.streams.getMessage(STREAM, { seq });
			return m ? toDeadLetter(m) : undefined;
		} catch (err) {
			if (isNoMessage(err)) return undefined;
			throw err;
		}
	}

	async stats(): Promise<ReturnType<typeof summarize>> {
		const info = await this.jsm.streams.info(STREAM, { subjects_filter: subjects.allDeadLetters() });
		return summarize(info.state.subjects ?? {}, parseDeadLetterSubject);
	}

	/**
	 * Puts the original message back on its subject (all consumers of it see it again: they are idempotent) and
	 * then removes the dead letter. Returns the new stream sequence.
	 */
	async replay(letter: DeadLetter, traceId: string): Promise<number> {
		const stored = await this.jsm.streams.getMessage(STREAM, { seq: letter.seq });
		if (!stored) throw new Error(`dead letter ${letter.seq} is gone`);
		const h = natsHeaders();
		for (const [k, values] of Object.entries(letter.headers)) for (const v of values) h.append(k, v);
		h.set(HEADERS.traceId, letter.trace_id ?? traceId);
		h.set(HEADERS.msgId, replayMessageId(letter));
		const ack = await this.acked.publish(letter.original.subject, stored.data, h);
		try {
			await this.jsm.streams.deleteMessage(STREAM, letter.seq);
		} catch (err) {
			if (!isNoMessage(err)) throw err; // a concurrent replay removed it first; its publish was de-duplicated
		}
		return ack.seq;
	}
}
