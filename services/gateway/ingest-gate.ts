import type { ServiceBroker } from "moleculer";
import type { Bus } from "../../lib/bus";

export interface IngestGate {
	stop(): Promise<void>;
}

/** Validates what external producers publish on `ingest.<source>.<type>` and forwards it as domain events. */
export async function startIngestGate(_deps: { broker: ServiceBroker; bus: Bus }): Promise<IngestGate> {
	throw new Error("ingest gate: being built");
}
