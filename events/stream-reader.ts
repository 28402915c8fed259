import { JetStreamApiError, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";

/** Reading stored messages straight from a stream (direct get: any replica answers, no consumer state). */

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
