import type { ServiceBroker } from "moleculer";
import type { TemplatedApp } from "uWebSockets.js";

export interface ApiSettings {
	/** Largest JSON body accepted; a bigger one is 413 before it is read. */
	maxBodyBytes: number;
}

/** Mounts the HTTP JSON API (`/v1/...`) over the actions of every context. */
export function mountApi(_app: TemplatedApp, _deps: { broker: ServiceBroker; settings: ApiSettings }): void {
	throw new Error("HTTP API: being built");
}
