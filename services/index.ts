import type { ServiceSchema } from "moleculer";
import type { NatsEndpoint } from "../lib/bus";
import type { PlatformConfig } from "../lib/config";
import { assetsService } from "./assets/assets.service";
import { authzService } from "./authz/authz.service";
import { catalogService } from "./catalog/catalog.service";
import { curationService } from "./curation/curation.service";
import { deadLettersService } from "./deadletters/deadletters.service";
import { executionService } from "./execution/execution.service";
import { gatewayService } from "./gateway/gateway.service";
import { intentService } from "./intent/intent.service";
import { telemetryService } from "./telemetry/telemetry.service";

// Each factory types its own `this`; the broker only needs a schema.
export type AnyServiceSchema = ServiceSchema<any, any>;

/** What a service may need besides the configuration, known once the platform has its bus. */
export interface ServiceContext {
	nats: NatsEndpoint;
}

/** Every service of the platform, by the name SERVICES uses. */
export const SERVICE_FACTORIES: Record<string, (config: PlatformConfig, ctx: ServiceContext) => AnyServiceSchema> = {
	// Every edge; with the embedded blob store, the gateway also serves its signed upload and download URLs.
	gateway: (config) =>
		gatewayService({
			host: config.gatewayHost,
			port: config.gatewayPort,
			api: { maxBodyBytes: config.gateway.maxBodyBytes },
			live: { maxBufferedBytes: config.gateway.liveMaxBufferedBytes, idleTimeoutSec: config.gateway.liveIdleTimeoutSec },
			dashboard: true,
			natsApi: true,
			ingest: true,
			...(config.assets.s3
				? {}
				: { blobs: { storageUrl: config.assets.storageUrl, signingKey: config.assets.signingKey, signingKeyFile: config.assets.signingKeyFile, replicas: config.streamReplicas } }),
		}),
	deadletters: () => deadLettersService(),
	execution: (config, ctx) => executionService(config, ctx),
	telemetry: () => telemetryService(),
	catalog: (config) => catalogService(config),
	intent: (config) => intentService(config),
	assets: (config) => assetsService(config),
	curation: (config) => curationService(config),
	authz: (config) => authzService({ adminPassword: config.authz.adminPassword, streamReplicas: config.streamReplicas, oidc: config.authz.oidc }),
};

export const SERVICE_NAMES = Object.keys(SERVICE_FACTORIES);
