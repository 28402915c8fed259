#!/usr/bin/env node
/**
 * Starts Savassan: with NATS_URL unset it spawns its own nats-server (JetStream, data under DATA_DIR, loopback,
 * free port) and runs every service in one broker; with NATS_URL it joins that NATS and runs SERVICES.
 */
import { ConfigError, loadConfig, maskUrl } from "../lib/config";
import { createLogger } from "../lib/logger";
import { startPlatform, type Platform } from "../lib/platform";
import { SERVICE_NAMES } from "../services/index";

async function main(): Promise<void> {
	let config;
	try {
		config = loadConfig(process.env, SERVICE_NAMES);
	} catch (err) {
		if (!(err instanceof ConfigError)) throw err;
		process.stderr.write(`savassan: ${err.message}\n`);
		process.exit(2);
	}
	const log = createLogger(config.logLevel);

	let platform: Platform | undefined;
	let shuttingDown = false;
	const shutdown = (signal: string) => {
		if (shuttingDown) {
			log.warn(`${signal} again: exiting without finishing the shutdown`);
			process.exit(130);
		}
		shuttingDown = true;
		log.info(`${signal}: draining consumers and stopping`);
		const force = setTimeout(() => {
			log.error(`shutdown took longer than ${config.shutdownTimeoutMs} ms; exiting`);
			process.exit(1);
		}, config.shutdownTimeoutMs);
		force.unref();
		void (platform?.stop() ?? Promise.resolve()).then(
			() => {
				log.info("stopped");
				process.exit(process.exitCode ?? 0);
			},
			(err: Error) => {
				log.error(`shutdown failed: ${err.message}`);
				process.exit(1);
			},
		);
	};
	process.on("SIGINT", () => shutdown("SIGINT"));
	process.on("SIGTERM", () => shutdown("SIGTERM"));
	// A bug must not leave a half-working platform running: log it, then stop in order (exit code 1).
	process.on("uncaughtException", (err) => {
		log.fatal({ err }, `uncaught exception: ${err.message}`);
		process.exitCode = 1;
		shutdown("uncaughtException");
	});
	process.on("unhandledRejection", (reason) => {
		log.fatal({ err: reason }, `unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}`);
		process.exitCode = 1;
		shutdown("unhandledRejection");
	});

	try {
		platform = await startPlatform(config, log);
	} catch (err) {
		log.error(`start failed: ${(err as Error).message}`);
		process.exit(1);
	}
	if (shuttingDown) return;
	const lines = [
		"Savassan is up",
		`  nats     ${maskUrl(platform.natsUrl)}${platform.nats ? ` (embedded, pid ${platform.nats.pid}, data ${platform.nats.dir})` : ""}`,
		`  node     ${platform.broker.nodeID}`,
		`  services ${platform.services.join(", ")}`,
		`  gateway  ${platform.gatewayUrl ?? "not in this process"}`,
		"Press Ctrl+C to stop.",
	];
	process.stdout.write(`${lines.join("\n")}\n`);
}

void main();
