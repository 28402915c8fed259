import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { AckedPublisher } from "../events/acked-publisher";
import { EventPublisher } from "../events/publish";
import { ensureStreams } from "../events/streams";
import { maskUrl } from "./config";
import { credsAuthenticator } from "./nats-auth";
import type { SchemaRegistry } from "./schemas";

export interface BusLog {
	info(...args: unknown[]): void;
	warn(...args: unknown[]): void;
}

/** Where the platform's NATS is and how to log in (creds file text in operator mode; none for an open server). */
export interface NatsEndpoint {
	servers: string[];
	creds?: string;
}

export interface BusOptions extends NatsEndpoint {
	/** Connection name shown by the server (monitoring, `nats server report connections`). */
	name: string;
	schemas: SchemaRegistry;
	/** Replicas for the streams created at start; 0 skips stream setup (a process that only consumes). */
	streamReplicas: number;
	log: BusLog;
}

/** The durable-messaging side of a process: one nats.js v3 connection, JetStream, and the event publisher. */
export class Bus {
	private constructor(
		readonly nc: NatsConnection,
		readonly js: JetStreamClient,
		readonly jsm: JetStreamManager,
		/** Acknowledged publishing for any stream (telemetry, ingest, dead letters). */
		readonly acked: AckedPublisher,
		/** Domain events, schema-checked. */
		readonly publisher: EventPublisher,
		readonly schemas: SchemaRegistry,
	) {}

	static async connect(opts: BusOptions): Promise<Bus> {
		let nc: NatsConnection;
		try {
			nc = await connect({
				servers: opts.servers,
				name: opts.name,
				...(opts.creds ? { authenticator: credsAuthenticator(opts.creds) } : {}),
				// Keep trying through server restarts; JetStream keeps what was published meanwhile.
				maxReconnectAttempts: -1,
				reconnectTimeWait: 250,
			});
		} catch (err) {
			throw new Error(`cannot connect to NATS at ${opts.servers.map(maskUrl).join(", ")}: ${(err as Error).message}`);
		}
		const jsm = await jetstreamManager(nc);
		if (opts.streamReplicas > 0) {
			const { created, updated } = await ensureStreams(jsm, { replicas: opts.streamReplicas });
			if (created.length) opts.log.info(`bus: created streams ${created.join(", ")}`);
			if (updated.length) opts.log.info(`bus: updated streams ${updated.join(", ")}`);
		}
		const js = jetstream(nc);
		const acked = new AckedPublisher(nc);
		const bus = new Bus(nc, js, jsm, acked, new EventPublisher(acked, opts.schemas), opts.schemas);
		bus.watch(opts.log);
		return bus;
	}

	private online = true;
	private onlineSince = Date.now();

	private watch(log: BusLog): void {
		void (async () => {
			for await (const s of this.nc.status()) {
				if (s.type === "disconnect") {
					this.online = false;
					log.warn(`bus: disconnected from ${maskUrl(s.server)}`);
				} else if (s.type === "reconnect") {
					this.online = true;
					this.onlineSince = Date.now();
					log.info(`bus: reconnected to ${maskUrl(s.server)}`);
				}
			}
		})();
	}

	/** Since when the connection is up (epoch ms), or undefined while it is down. */
	get connectedSince(): number | undefined {
		return this.connected ? this.onlineSince : undefined;
	}

	/** Connected right now (false while reconnecting after a server restart). */
	get connected(): boolean {
		return this.online && !this.nc.isClosed();
	}

	async close(): Promise<void> {
		this.acked.close();
		if (!this.nc.isClosed()) await this.nc.drain();
	}
}
