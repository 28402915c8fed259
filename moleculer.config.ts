import type { BrokerOptions } from "moleculer";
import { credsAuthenticator } from "nats";
import type { NatsEndpoint } from "./lib/bus";
import type { PlatformConfig } from "./lib/config";
import { pinoOptions } from "./lib/logger";
import { AuthzMiddleware } from "./lib/moleculer/authz.middleware";
import { EDGE_RULES } from "./services/authz/edge-rules";
import { BusMiddleware } from "./lib/moleculer/bus.middleware";
import { DurableEventsMiddleware } from "./lib/moleculer/durable-events.mixin";
import { ParamsValidationMiddleware } from "./lib/moleculer/params-validation.middleware";
import { StoreErrorsMiddleware } from "./lib/moleculer/store-errors.middleware";
import { platformSchemas, type SchemaRegistry } from "./lib/schemas";

/** Moleculer's transporter namespace: its internal subjects are `MOL-savassan.*`. */
export const NAMESPACE = "savassan";

/** Broker options of every Savassan process; `schemas` is overridable for tests that add fixture contracts. */
export function brokerOptions(
	config: PlatformConfig,
	nats: NatsEndpoint,
	schemas: SchemaRegistry = platformSchemas(),
): BrokerOptions {
	return {
		namespace: NAMESPACE,
		nodeID: config.nodeId,
		transporter: {
			type: "NATS",
			options: {
				servers: nats.servers,
				maxReconnectAttempts: -1,
				reconnectTimeWait: 250,
				...(nats.creds ? { authenticator: credsAuthenticator(new TextEncoder().encode(nats.creds)) } : {}),
			},
		},
		serializer: "JSON",
		logger: { type: "Pino", options: { level: config.logLevel, pino: { options: pinoOptions(config.logLevel) } } },
		// Params are checked against schemas/ by ParamsValidationMiddleware, not by fastest-validator.
		validator: false,
		requestTimeout: config.requestTimeoutMs,
		retryPolicy: { enabled: false },
		// The platform handles signals itself, so it can drain consumers and stop the embedded NATS in order.
		skipProcessEventRegistration: true,
		middlewares: [
			BusMiddleware({
				...nats,
				name: `savassan:${config.nodeId}`,
				schemas,
				streamReplicas: config.streamReplicas,
				consumerDefaults: config.events,
			}),
			// Wrapped in list order, so the later runs first: params are checked before authz builds the resource.
			AuthzMiddleware(EDGE_RULES),
			ParamsValidationMiddleware(schemas),
			StoreErrorsMiddleware(),
			DurableEventsMiddleware(),
		],
	};
}
