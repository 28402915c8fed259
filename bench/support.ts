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
