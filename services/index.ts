import type { ServiceSchema } from "moleculer";
import type { PlatformConfig } from "../lib/config";
import { deadLettersService } from "./deadletters/deadletters.service";
import { gatewayService } from "./gateway/gateway.service";

// Each factory types its own `this`; the broker only needs a schema.
export type AnyServiceSchema = ServiceSchema<any, any>;

/** Every service of the platform, by the name SERVICES uses. */
export const SERVICE_FACTORIES: Record<string, (config: PlatformConfig) => AnyServiceSchema> = {
	gateway: (config) => gatewayService({ host: config.gatewayHost, port: config.gatewayPort }),
	deadletters: () => deadLettersService(),
};

export const SERVICE_NAMES = Object.keys(SERVICE_FACTORIES);
