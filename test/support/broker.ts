import { ServiceBroker } from "moleculer";
import type { AnyServiceSchema } from "../../services/index";
import { join } from "node:path";
import type { NatsEndpoint } from "../../lib/bus";
import { brokerOptions } from "../../moleculer.config";
import { loadConfig, type PlatformConfig } from "../../lib/config";
import { PROJECT_ROOT, SCHEMAS_DIR } from "../../lib/paths";
import { SchemaRegistry } from "../../lib/schemas";

/** Platform schemas plus the test fixtures' contracts (test.widget.*, widgets.*). */
export const testSchemas = new SchemaRegistry([SCHEMAS_DIR, join(PROJECT_ROOT, "test", "fixtures", "schemas")]);

export function testConfig(env: Record<string, string> = {}): PlatformConfig {
	return loadConfig({ LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "fatal", EVENT_RETRY_BASE_MS: "20", ...env }, []);
}

/** A broker wired exactly like the platform's (bus, validation), joined to the test NATS. */
export async function startBroker(
	nats: string | NatsEndpoint,
	nodeId: string,
	services: AnyServiceSchema[],
	env: Record<string, string> = {},
): Promise<ServiceBroker> {
	const broker = new ServiceBroker(brokerOptions(
			testConfig({ NODE_ID: nodeId, ...env }),
			typeof nats === "string" ? { servers: [nats] } : nats,
			testSchemas,
		),);
	for (const s of services) broker.createService(s);
	try {
		await broker.start();
	} catch (err) {
		await broker.stop().catch(() => undefined);
		throw err;
	}
	return broker;
}
