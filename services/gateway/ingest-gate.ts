import type { ServiceBroker } from "moleculer";
import { DurableConsumer, exponentialBackoff, type Delivery } from "../../events/consume";
import { INGEST_GATE_DURABLE, ingestMsgId, ingestProblems, ingestSubject } from "../../events/ingest";
import type { EventPublisher } from "../../events/publish";
import { STREAMS } from "../../events/streams";
import { subjects } from "../../events/subjects";
import type { Bus } from "../../lib/bus";
import { consumerDefaultsOf } from "../../lib/moleculer/bus.middleware";

export interface IngestGate {
	stop(): Promise<void>;
}

/**
 * Publishes one checked INGEST message as its domain event, de-duplicated by its INGEST sequence: a redelivery
 * (the ack lost, the gate restarted) is stored once.
 */
export async function forwardIngest(publisher: EventPublisher, payload: unknown, d: Delivery): Promise<void> {
	// Screened by `validate` before the handler runs: the type is an accepted one.
	const { source, type } = ingestSubject(d.subject)!;
	await publisher.publish(type!.event, { source, ingest_seq: d.seq, received_at: d.publishedAt.toISOString(), payload }, { msgId: ingestMsgId(d.seq), traceId: d.traceId });
}

/**
 * Validates what external producers publish on `ingest.<source>.<type>` and forwards it as domain events. One
 * durable consumer over the whole INGEST stream, shared by every gateway: non-JSON, an unknown type or a payload
 * that fails its schema is dead-lettered (`dlq.INGEST.gateway__ingest`) at once with the reason naming the field,
 * and only then acknowledged, so nothing is lost or silently dropped; a forward that fails (EVENTS unreachable) is
 * retried like any handler, then dead-lettered.
 */
export async function startIngestGate({ broker, bus }: { broker: ServiceBroker; bus: Bus }): Promise<IngestGate> {
	const defaults = consumerDefaultsOf(broker);
	const consumer = new DurableConsumer<unknown>(bus, {
		stream: STREAMS.ingest.name,
		durable: INGEST_GATE_DURABLE,
		filterSubject: subjects.allIngest(),
		description: "gateway: validates external producers' events and forwards them as domain events",
		maxDeliveries: defaults.maxDeliveries,
		ackWaitMs: defaults.ackWaitMs,
		retryDelay: exponentialBackoff(defaults.retryBaseMs),
		// Order across producers means nothing; each forward is independent and de-duplicated.
		concurrency: 32,
		prefetch: 256,
		log: broker.getLogger("ingest-gate"),
		validate: (payload, d) => ingestProblems(d.subject, payload, (id, value) => bus.schemas.validator(id)(value)),
		handler: (payload, d) => forwardIngest(bus.publisher, payload, d),
	});
	await consumer.start();
	return { stop: () => consumer.stop() };
}
