import type { ServiceBroker } from "moleculer";
import type { Bus } from "../../lib/bus";

export interface NatsApi {
	stop(): Promise<void>;
}

/** Serves selected actions over the NATS services API (`savassan.v1.*`). */
export async function startNatsApi(_deps: { broker: ServiceBroker; bus: Bus }): Promise<NatsApi> {
	throw new Error("NATS API: being built");
}
