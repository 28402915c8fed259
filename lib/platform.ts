import { ServiceBroker } from "moleculer";
import { join } from "node:path";
import { brokerOptions } from "../moleculer.config";
import { SERVICE_FACTORIES, SERVICE_NAMES } from "../services/index";
import type { PlatformConfig } from "./config";
import { startEmbeddedNats, type EmbeddedNats } from "./nats-server";

export interface PlatformLog {
	info(msg: string): void;
	warn(msg: string): void;
	error(msg: string): void;
}

export interface Platform {
	broker: ServiceBroker;
	natsUrl: string;
	/** Set when this process spawned its own nats-server. */
	nats?: EmbeddedNats;
	services: string[];
	/** `http://host:port` when the gateway runs in this process. */
	gatewayUrl?: string;
	/** Drains consumers, stops the services, then the embedded NATS. Safe to call twice. */
	stop(): Promise<void>;
}

/** Composition root: the bus (own or joined), one broker, the chosen services. */
export async function startPlatform(config: PlatformConfig, log: PlatformLog): Promise<Platform> {
	let nats: EmbeddedNats | undefined;
	let servers = config.natsServers;
	if (!servers.length) {
		nats = await startEmbeddedNats({ bin: config.natsServerBin, dir: join(config.dataDir, "nats") });
		servers = [nats.url];
		log.info(`embedded nats-server ${nats.url} (pid ${nats.pid}, data ${nats.dir})`);
		void nats.exited.then(({ code, signal }) => {
			if (!stopping) log.error(`embedded nats-server exited unexpectedly (code ${code}, signal ${signal})`);
		});
	}

	const services = config.services.length ? config.services : SERVICE_NAMES;
	const broker = new ServiceBroker(brokerOptions(config, servers));
	let stopping = false;
	let stopped: Promise<void> | undefined;
	const stop = () => {
		stopped ??= (async () => {
			stopping = true;
			await broker.stop();
			await nats?.stop();
		})();
		return stopped;
	};

	try {
		for (const name of services) broker.createService(SERVICE_FACTORIES[name]!(config));
		await broker.start();
	} catch (err) {
		await stop().catch(() => undefined);
		throw err;
	}
	const gateway = broker.getLocalService("gateway") as { address?: string } | undefined;
	return { broker, natsUrl: servers[0]!, nats, services, gatewayUrl: gateway?.address, stop };
}
