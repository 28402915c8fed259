import type { JetStreamManager } from "@nats-io/jetstream";
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { join } from "node:path";
import { loadConfig } from "../lib/config";
import { PROJECT_ROOT, SCHEMAS_DIR } from "../lib/paths";
import { SchemaRegistry } from "../lib/schemas";
import { brokerOptions } from "../moleculer.config";

/** Platform schemas plus the benchmark's own contracts. */
export const benchSchemas = new SchemaRegistry([SCHEMAS_DIR, join(PROJECT_ROOT, "bench", "schemas")]);

export const ECHO = { id: 7, name: "resnet50-cats", tags: ["a", "b"] };

/** Moleculer with nothing but the NATS transporter: the baseline for the platform's broker. */
export function bareBroker(natsUrl: string, nodeID: string): ServiceBroker {
	const options: BrokerOptions = {
		namespace: "bare",
		nodeID,
		transporter: { type: "NATS", options: { servers: [natsUrl] } },
		serializer: "JSON",
		logger: false,
		validator: false,
	};
	return new ServiceBroker(options);
}

/** A broker exactly as the platform builds it (bus, schema validation, pino at warn). */
export function platformBroker(natsUrl: string, nodeID: string): ServiceBroker {
	const config = loadConfig({ NODE_ID: nodeID, LOG_LEVEL: "warn" }, []);
	return new ServiceBroker({ ...brokerOptions(config, { servers: [natsUrl] }, benchSchemas), namespace: "platform" });
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The nearest-rank percentile (p in 0..100). */
export const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

/** Until `durable` has nothing left to deliver and nothing unacknowledged: what was published is handled. */
export async function drained(jsm: JetStreamManager, stream: string, durable: string): Promise<void> {
	for (;;) {
		const info = await jsm.consumers.info(stream, durable);
		if (info.num_pending === 0 && info.num_ack_pending === 0) return;
		await new Promise((r) => setTimeout(r, 20));
	}
}
