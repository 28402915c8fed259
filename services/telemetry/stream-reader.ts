import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";

export interface ReadOptions {
	/** One subject filter (nats-server 2.9 takes one per consumer). */
	filter: string;
	/** Only messages stored at or after this time. */
	since?: Date;
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
	try {
		if (total === 0) return 0;
		const messages = await consumer.consume();
		for await (const m of messages) {
			await each(m);
			if (++read >= total) break;
		}
		return read;
	} finally {
		await consumer.delete().catch(() => undefined);
	}
}
