import { hostname } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { defaultNatsServerBin } from "./nats-server";
import { PROJECT_ROOT } from "./paths";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface PlatformConfig {
	/** Servers of an existing NATS deployment; empty means: spawn an embedded nats-server. */
	natsServers: string[];
	natsServerBin: string;
	dataDir: string;
	/** Services to run in this process; empty means all of them. */
	services: string[];
	nodeId: string;
	logLevel: LogLevel;
	gatewayHost: string;
	gatewayPort: number;
	streamReplicas: number;
	events: {
		maxDeliveries: number;
		ackWaitMs: number;
		retryBaseMs: number;
	};
	/** Deadline of an action call unless the caller sets its own `timeout`. */
	requestTimeoutMs: number;
	shutdownTimeoutMs: number;
}

/** Every bad variable of the environment, reported together so one restart fixes them all. */
export class ConfigError extends Error {
	constructor(readonly problems: string[]) {
		super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
		this.name = "ConfigError";
	}
}

type Env = Record<string, string | undefined>;

class Reader {
	readonly problems: string[] = [];
	constructor(private readonly env: Env) {}

	string(name: string, fallback: string): string {
		const raw = this.env[name]?.trim();
		return raw ? raw : fallback;
	}

	list(name: string): string[] {
		return (this.env[name] ?? "")
			.split(",")
			.map((s) => s.trim())
			.filter(Boolean);
	}

	int(name: string, fallback: number, min: number, max: number): number {
		const raw = this.env[name]?.trim();
		if (!raw) return fallback;
		const value = Number(raw);
		if (!/^-?\d+$/.test(raw) || value < min || value > max) {
			this.problems.push(`${name}=${JSON.stringify(raw)}: expected a whole number from ${min} to ${max}`);
			return fallback;
		}
		return value;
	}

	oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
		const raw = this.env[name]?.trim();
		if (!raw) return fallback;
		if (!(allowed as readonly string[]).includes(raw)) {
			this.problems.push(`${name}=${JSON.stringify(raw)}: expected one of ${allowed.join(", ")}`);
			return fallback;
		}
		return raw as T;
	}
}

function checkNatsUrls(urls: string[], problems: string[]): void {
	for (const url of urls) {
		let parsed: URL | undefined;
		try {
			parsed = new URL(url);
		} catch {
			/* reported below */
		}
		if (!parsed || !["nats:", "tls:", "ws:", "wss:"].includes(parsed.protocol) || !parsed.hostname) {
			problems.push(`NATS_URL: ${JSON.stringify(maskUrl(url))} is not a nats://host:port URL`);
		}
	}
}

/**
 * Reads the platform configuration from environment variables.
 * `knownServices` is the catalog SERVICES is checked against.
 */
export function loadConfig(env: Env, knownServices: readonly string[]): PlatformConfig {
	const r = new Reader(env);
	const natsServers = r.list("NATS_URL");
	checkNatsUrls(natsServers, r.problems);

	const services = r.list("SERVICES");
	for (const name of services) {
		if (!knownServices.includes(name)) {
			r.problems.push(`SERVICES: unknown service ${JSON.stringify(name)} (known: ${knownServices.join(", ")})`);
		}
	}

	const dataDir = r.string("DATA_DIR", "data");
	const nodeId = r.string("NODE_ID", `${hostname()}-${process.pid}`);
	if (!/^[A-Za-z0-9_-]+$/.test(nodeId)) {
		r.problems.push(`NODE_ID=${JSON.stringify(nodeId)}: use letters, digits, '-' and '_' only`);
	}

	const config: PlatformConfig = {
		natsServers,
		natsServerBin: r.string("NATS_SERVER_BIN", defaultNatsServerBin()),
		dataDir: isAbsolute(dataDir) ? dataDir : resolve(PROJECT_ROOT, dataDir),
		services,
		nodeId,
		logLevel: r.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
		gatewayHost: r.string("GATEWAY_HOST", "127.0.0.1"),
		gatewayPort: r.int("GATEWAY_PORT", 8080, 0, 65535),
		streamReplicas: r.int("STREAM_REPLICAS", 1, 1, 5),
		events: {
			maxDeliveries: r.int("EVENT_MAX_DELIVERIES", 5, 1, 100),
			ackWaitMs: r.int("EVENT_ACK_WAIT_MS", 30_000, 1_000, 3_600_000),
			retryBaseMs: r.int("EVENT_RETRY_BASE_MS", 500, 1, 600_000),
		},
		requestTimeoutMs: r.int("REQUEST_TIMEOUT_MS", 30_000, 100, 3_600_000),
		shutdownTimeoutMs: r.int("SHUTDOWN_TIMEOUT_MS", 15_000, 1_000, 600_000),
	};
	if (r.problems.length) throw new ConfigError(r.problems);
	return config;
}

/** A URL fit for logs: any password or token in it replaced by `***`. */
export function maskUrl(url: string): string {
	return url.replace(/^([a-z]+:\/\/)([^@/]*)@/i, (_m, scheme: string, auth: string) => {
		const user = auth.includes(":") ? auth.slice(0, auth.indexOf(":")) : "";
		return `${scheme}${user ? `${user}:***` : "***"}@`;
	});
}
