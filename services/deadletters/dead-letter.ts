import { DLQ_HEADERS, HEADERS, type DeadLetterReason } from "../../events/headers";

/** A message as the dead-letter stream holds it, free of any client library's types. */
export interface StoredMessage {
	seq: number;
	subject: string;
	time: Date;
	headers: Record<string, string[]>;
	data: Uint8Array;
}

export interface DeadLetter {
	seq: number;
	dead_lettered_at: string;
	reason: DeadLetterReason | "unknown";
	error: string;
	consumer: string;
	deliveries: number;
	trace_id?: string;
	original: { stream: string; subject: string; seq: number; msg_id?: string };
	/** The original headers, without the dead-letter ones. */
	headers: Record<string, string[]>;
	/** The payload as JSON when it parses, else as text (`payload_text`). */
	payload?: unknown;
	payload_text?: string;
}

const REASONS: readonly string[] = ["malformed", "schema", "handler-failed", "max-deliveries"];
const DLQ_NAMES = new Set(Object.values(DLQ_HEADERS).map((h) => h.toLowerCase()));

export function readDeadLetter(m: StoredMessage): DeadLetter {
	const first = (name: string) => {
		const key = Object.keys(m.headers).find((k) => k.toLowerCase() === name.toLowerCase());
		return key ? m.headers[key]![0] : undefined;
	};
	const reason = first(DLQ_HEADERS.reason) ?? "unknown";
	const headers = Object.fromEntries(Object.entries(m.headers).filter(([k]) => !DLQ_NAMES.has(k.toLowerCase())));
	const text = new TextDecoder().decode(m.data);
	let payload: unknown;
	let parsed = false;
	try {
		payload = JSON.parse(text);
		parsed = true;
	} catch {
		/* kept as text below */
	}
	const msgId = first(DLQ_HEADERS.msgId);
	return {
		seq: m.seq,
		dead_lettered_at: first(DLQ_HEADERS.failedAt) ?? m.time.toISOString(),
		reason: (REASONS.includes(reason) ? reason : "unknown") as DeadLetter["reason"],
		error: first(DLQ_HEADERS.error) ?? "",
		consumer: first(DLQ_HEADERS.consumer) ?? "",
		deliveries: Number(first(DLQ_HEADERS.deliveries) ?? 0),
		trace_id: first(HEADERS.traceId),
		original: {
			stream: first(DLQ_HEADERS.stream) ?? "",
			subject: first(DLQ_HEADERS.subject) ?? "",
			seq: Number(first(DLQ_HEADERS.seq) ?? 0),
			...(msgId ? { msg_id: msgId } : {}),
		},
		headers,
		...(parsed ? { payload } : { payload_text: text }),
	};
}

/** Replaying the same dead letter twice inside the de-duplication window stores it once. */
export function replayMessageId(letter: DeadLetter): string {
	return `replay:${letter.original.stream}:${letter.original.seq}:${letter.seq}`;
}

/** Counts by original stream and consumer, from per-subject counts of the dead-letter stream. */
export function summarize(
	counts: Record<string, number>,
	parse: (subject: string) => { stream: string; consumer: string } | undefined,
): { total: number; by_consumer: { stream: string; consumer: string; count: number }[] } {
	const by_consumer = Object.entries(counts)
		.map(([subject, count]) => ({ ...parse(subject)!, count }))
		.filter((row) => row.stream !== undefined)
		.sort((a, b) => b.count - a.count || a.consumer.localeCompare(b.consumer));
	return { total: by_consumer.reduce((n, r) => n + r.count, 0), by_consumer };
}
