import { ServiceBroker } from "moleculer";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { brokerOptions } from "../moleculer.config";
import { SERVICE_FACTORIES, SERVICE_NAMES } from "../services/index";
import type { NatsEndpoint } from "./bus";
import type { PlatformConfig } from "./config";
import { NatsAuthority } from "./nats-auth";
import { startEmbeddedNats, type EmbeddedNats } from "./nats-server";

export interface PlatformLog {
	info(msg: string): void;
	warn(msg: string): void;
	error(msg: string): void;
}

export interface Platform {
	broker: ServiceBroker;
	natsUrl: string;
	/** Set when this process spawned its own nats-server (as first started). */
	nats?: { pid: number; dir: string };
	services: string[];
	/** `http://host:port` when the gateway runs in this process. */
	gatewayUrl?: string;
	/** Drains consumers, stops the services, then the embedded NATS. Safe to call twice. */
	stop(): Promise<void>;
}

const MAX_NATS_RESTARTS_PER_MINUTE = 5;

function readCreds(file: string): string {
	try {
		return readFileSync(file, "utf8");
	} catch (err) {
		throw new Error(`cannot read NATS_CREDS ${file}: ${(err as Error).message}`);
	}
}

/** Composition root: the bus (own or joined), one broker, the chosen services. */
export async function startPlatform(config: PlatformConfig, log: PlatformLog): Promise<Platform> {
	let nats: EmbeddedNats | undefined;
	let endpoint: NatsEndpoint;
	let stopping = false;
	let restarting: Promise<void> | undefined;
	if (config.natsServers.length) {
		endpoint = { servers: config.natsServers, creds: config.natsCredsFile && readCreds(config.natsCredsFile) };
	} else {
		// Operator mode: every client needs credentials, and a run's sidecar gets ones limited to its own subjects.
		const authority = NatsAuthority.loadOrCreate(config.natsAuthorityFile);
		const options = { bin: config.natsServerBin, dir: join(config.dataDir, "nats"), extraConfig: await authority.serverConfig() };
		let restarts: number[] = [];
		// Clients reconnect on their own; what the server had stored is on disk. Give up if it keeps dying.
		const supervise = (server: EmbeddedNats) =>
			void server.exited.then(async ({ code, signal }) => {
				if (stopping) return;
				const now = Date.now();
				restarts = [...restarts.filter((t) => now - t < 60_000), now];
				if (restarts.length > MAX_NATS_RESTARTS_PER_MINUTE) {
					log.error(`embedded nats-server exited (code ${code}, signal ${signal}) too often; not restarting it`);
					return;
				}
				log.error(`embedded nats-server exited unexpectedly (code ${code}, signal ${signal}); restarting it`);
				restarting = startEmbeddedNats({ ...options, port: server.port }).then(
					(restarted) => {
						nats = restarted;
						log.info(`embedded nats-server restarted (pid ${restarted.pid})`);
						supervise(restarted);
					},
					(err: Error) => log.error(`cannot restart the embedded nats-server: ${err.message}`),
				);
			});
		nats = await startEmbeddedNats(options);
		endpoint = { servers: [nats.url], creds: await authority.platformCreds(`platform-${config.nodeId}`) };
		log.info(`embedded nats-server ${nats.url} (pid ${nats.pid}, data ${nats.dir})`);
		supervise(nats);
	}

	const services = config.services.length ? config.services : SERVICE_NAMES;
	const broker = new ServiceBroker(brokerOptions(config, endpoint));
	let stopped: Promise<void> | undefined;
	const stop = () => {
		stopped ??= (async () => {
			stopping = true;
			await broker.stop();
			await restarting; // a server being restarted right now must not outlive us
			await nats?.stop();
		})();
		return stopped;
	};

	try {
		for (const name of services) broker.createService(SERVICE_FACTORIES[name]!(config, { nats: endpoint }));
		await broker.start();
	} catch (err) {
		await stop().catch(() => undefined);
		throw err;
	}
	const gateway = broker.getLocalService("gateway") as { address?: string } | undefined;
	return { broker, natsUrl: endpoint.servers[0]!, nats: nats && { pid: nats.pid, dir: nats.dir }, services, gatewayUrl: gateway?.address, stop };
}
