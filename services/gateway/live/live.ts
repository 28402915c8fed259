import type { ServiceBroker } from "moleculer";
import type { TemplatedApp } from "uWebSockets.js";
import type { Bus } from "../../../lib/bus";

export interface LiveSettings {
	/** Bytes a socket may have waiting before it is closed as a slow consumer. */
	maxBufferedBytes: number;
	/** Seconds without traffic (pings included) before a socket is dropped. */
	idleTimeoutSec: number;
}

export interface Live {
	close(): Promise<void>;
}

/** Mounts the live WebSocket `/v1/live`. */
export async function openLive(_app: TemplatedApp, _deps: { broker: ServiceBroker; bus: Bus; settings: LiveSettings }): Promise<Live> {
	throw new Error("live: being built");
}
