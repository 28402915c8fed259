import { hostname } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { defaultNatsServerBin } from "./nats-server";
import { PROJECT_ROOT } from "./paths";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What the gateway's edges accept from one client. */
export interface GatewayLimits {
	/** Largest JSON body of an HTTP API request. */
	maxBodyBytes: number;
	/** Bytes a live WebSocket may have waiting before it is closed as a slow consumer. */
	liveMaxBufferedBytes: number;
	/** Seconds of silence (pings included) before a live WebSocket is dropped. */
	liveIdleTimeoutSec: number;
}

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
	gateway: GatewayLimits;
	streamReplicas: number;
	events: {
		maxDeliveries: number;
		ackWaitMs: number;
		retryBaseMs: number;
	};
	/** Creds file for the platform's own connections when joining a NATS in operator mode. */
	natsCredsFile?: string;
	/**
	 * Keys that sign per-run sidecar credentials (and, for the embedded server, its operator). Created on the
	 * first start in embedded mode; in join mode it must be provided, or runs cannot be started.
	 */
	natsAuthorityFile: string;
	execution: ExecutionConfig;
	/** The intent parser's optional LLM provider: set only when INTENT_LLM_URL and INTENT_LLM_API_KEY are both given. */
	intent: { llm?: LlmSettings };
	catalog: CatalogAdapterSettings;
	/**
	 * Password of the `admin` user created on a first start with an empty directory (AUTHZ_ADMIN_PASSWORD); never
	 * logged. `oidc`: sign-in through an OpenID provider, when AUTHZ_OIDC_* are set.
	 */
	authz: { adminPassword?: string; oidc?: OidcClientSettings };
	assets: AssetsConfig;
	/** Deadline of an action call unless the caller sets its own `timeout`. */
	requestTimeoutMs: number;
	shutdownTimeoutMs: number;
}

export const RUNTIMES = ["local", "kubernetes"] as const;

export interface ExecutionConfig {
	runtime: (typeof RUNTIMES)[number];
	heartbeatIntervalMs: number;
	/** Lifetime of a run's sidecar credential. */
	credentialTtlSec: number;
	/** Automatic retries of a run whose workload was lost. */
	maxRetries: number;
	/** Wall-time limit of one attempt unless the run sets its own. */
	timeoutSec: number;
	/** How long a run may stay QUEUED before it counts as failed to start. */
	startTimeoutMs: number;
	/** NATS URL given to sidecars when it differs from the platform's own (a cluster-reachable address). */
	sidecarNatsUrl?: string;
	/** Trainer image of a run that names none (kubernetes runtime). */
	defaultImage: string;
	/** Blob store for checkpoints and artifacts (file:// for the embedded store). */
	storageUrl: string;
	k8sNamespace: string;
	k8sSidecarImage: string;
}

/** An S3-compatible object store (AWS, MinIO, s3rver...). */
export interface S3Settings {
	/** Unset: AWS's own endpoint for the region. */
	endpoint?: string;
	bucket: string;
	region: string;
	/** Unset: the SDK's default credential chain (environment, instance role...). */
	credentials?: { accessKeyId: string; secretAccessKey: string };
	forcePathStyle: boolean;
}

/** Where uploaded assets are kept and how their URLs are signed. */
export interface AssetsConfig {
	/** Set when S3_BUCKET is: assets go to S3 and its presigned URLs; otherwise to the embedded store. */
	s3?: S3Settings;
	/** The embedded store (file://), the same as the checkpoints'. */
	storageUrl: string;
	/** BLOB_SIGNING_KEY, when given; otherwise the key in `signingKeyFile` (created on first use, mode 0600). */
	signingKey?: string;
	signingKeyFile: string;
	/** The gateway's address as clients reach it, without a trailing '/': the base of the embedded store's URLs. */
	publicUrl: string;
}

/** The catalog's production adapters; each absent one means the embedded adapter. */
export interface CatalogAdapterSettings {
	elasticsearch?: { url: string; indexPrefix: string };
	neo4j?: { url: string; user: string; password: string; database: string };
}

export interface LlmSettings {
	/** An OpenAI-compatible endpoint's base URL (`https://api.example.com/v1`) or its full `/chat/completions` URL. */
	url: string;
	apiKey: string;
	model: string;
	timeoutMs: number;
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

/** The platform as an OpenID Connect client (the provider's endpoints are discovered from its issuer). */
export interface OidcClientSettings {
	issuer: string;
	clientId: string;
	/** Absent for a public client (PKCE alone). Never logged. */
	clientSecret?: string;
	/** Where the provider sends the browser back with the code. */
	redirectUrl: string;
}

const HTTP_URL = /^https?:\/\/[^\s/]+(\/\S*)?$/;

function readAuthz(r: Reader): PlatformConfig["authz"] {
	const adminPassword = r.string("AUTHZ_ADMIN_PASSWORD", "");
	const oidc = readOidc(r);
	return { ...(adminPassword ? { adminPassword } : {}), ...(oidc ? { oidc } : {}) };
}

/** AUTHZ_OIDC_*: the issuer, client id and redirect URL together or none of them; the secret only with them. */
function readOidc(r: Reader): OidcClientSettings | undefined {
	const issuer = r.string("AUTHZ_OIDC_ISSUER", "");
	const clientId = r.string("AUTHZ_OIDC_CLIENT_ID", "");
	const clientSecret = r.string("AUTHZ_OIDC_CLIENT_SECRET", "");
	const redirectUrl = r.string("AUTHZ_OIDC_REDIRECT_URL", "");
	const required = { AUTHZ_OIDC_ISSUER: issuer, AUTHZ_OIDC_CLIENT_ID: clientId, AUTHZ_OIDC_REDIRECT_URL: redirectUrl };
	const missing = Object.entries(required).filter(([, v]) => !v).map(([name]) => name);
	if (missing.length === 3) {
		if (clientSecret) r.problems.push("AUTHZ_OIDC_CLIENT_SECRET: set AUTHZ_OIDC_ISSUER, AUTHZ_OIDC_CLIENT_ID and AUTHZ_OIDC_REDIRECT_URL too, or remove it");
		return undefined;
	}
	if (missing.length) {
		r.problems.push(`${missing.join(", ")}: OIDC sign-in needs AUTHZ_OIDC_ISSUER, AUTHZ_OIDC_CLIENT_ID and AUTHZ_OIDC_REDIRECT_URL together`);
		return undefined;
	}
	for (const [name, url] of [["AUTHZ_OIDC_ISSUER", issuer], ["AUTHZ_OIDC_REDIRECT_URL", redirectUrl]] as const) {
		if (!HTTP_URL.test(url)) r.problems.push(`${name}: ${JSON.stringify(maskUrl(url))} is not an http(s) URL`);
	}
	return { issuer, clientId, ...(clientSecret ? { clientSecret } : {}), redirectUrl };
}

const S3_BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** The assets section; S3 variables without S3_BUCKET are a mistake, not a silent fallback to the embedded store. */
function readAssets(r: Reader, env: Env, opts: { dataDir: string; storageUrl: string; gatewayHost: string; gatewayPort: number }): AssetsConfig {
	const bucket = r.string("S3_BUCKET", "");
	const endpoint = r.string("S3_ENDPOINT", "");
	const accessKeyId = r.string("S3_ACCESS_KEY_ID", "");
	const secretAccessKey = r.string("S3_SECRET_ACCESS_KEY", "");
	const region = r.string("S3_REGION", "us-east-1");
	const forcePathStyle = r.oneOf("S3_FORCE_PATH_STYLE", ["true", "false"], endpoint ? "true" : "false") === "true";
	if (bucket && !S3_BUCKET_NAME.test(bucket)) r.problems.push(`S3_BUCKET=${JSON.stringify(bucket)}: expected a bucket name of 3 to 63 lowercase letters, digits, '.' and '-'`);
	if (endpoint && !HTTP_URL.test(endpoint)) r.problems.push(`S3_ENDPOINT: ${JSON.stringify(maskUrl(endpoint))} is not an http(s) URL`);
	if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) r.problems.push("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: set both or neither");
	// Loose on purpose: S3-compatible stores name regions their own way ("auto", "garage").
	if (!/^[a-z0-9-]{2,32}$/.test(region)) r.problems.push(`S3_REGION=${JSON.stringify(region)}: expected a region name such as us-east-1`);
	if (!bucket) {
		const stray = ["S3_ENDPOINT", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_REGION", "S3_FORCE_PATH_STYLE"].filter((name) => env[name]?.trim());
		if (stray.length) r.problems.push(`${stray.join(", ")}: set S3_BUCKET too, or remove them to keep assets in the embedded store`);
	}
	const signingKey = r.string("BLOB_SIGNING_KEY", "");
	if (signingKey && signingKey.length < 32) r.problems.push("BLOB_SIGNING_KEY: expected at least 32 characters (the value is not shown)");
	const publicUrl = r.string("PUBLIC_URL", `http://${opts.gatewayHost}:${opts.gatewayPort}`).replace(/\/+$/, "");
	if (!HTTP_URL.test(publicUrl)) r.problems.push(`PUBLIC_URL: ${JSON.stringify(maskUrl(publicUrl))} is not an http(s) URL`);
	return {
		...(bucket
			? {
					s3: {
						...(endpoint ? { endpoint } : {}),
						bucket,
						region,
						...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
						forcePathStyle,
					},
				}
			: {}),
		storageUrl: opts.storageUrl,
		...(signingKey ? { signingKey } : {}),
		signingKeyFile: join(opts.dataDir, "blob-signing.key"),
		publicUrl,
	};
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

const ELASTIC_SCHEMES = ["http:", "https:"];
const NEO4J_SCHEMES = ["neo4j:", "neo4j+s:", "neo4j+ssc:", "bolt:", "bolt+s:", "bolt+ssc:"];
/** Elasticsearch index names: lower case, no separators it gives a meaning to. */
const INDEX_PREFIX = /^[a-z0-9][a-z0-9_-]{0,99}$/;

/** The URL if it parses with one of `schemes`; else a problem that does not echo it (it may hold a password). */
function serviceUrl(value: string, name: string, schemes: string[], problems: string[]): string | undefined {
	if (!value) return undefined;
	let parsed: URL;
	try {
		parsed = new URL(value);
	} catch {
		problems.push(`${name} is not a URL (expected ${schemes[0]}//host:port)`);
		return undefined;
	}
	if (!schemes.includes(parsed.protocol)) problems.push(`${name} ${maskUrl(value)} must use ${schemes.map((s) => s.slice(0, -1)).join(", ")}`);
	return value;
}

function readCatalog(r: Reader): CatalogAdapterSettings {
	const settings: CatalogAdapterSettings = {};
	const elastic = serviceUrl(r.string("ELASTICSEARCH_URL", ""), "ELASTICSEARCH_URL", ELASTIC_SCHEMES, r.problems);
	const indexPrefix = r.string("ELASTICSEARCH_INDEX_PREFIX", "savassan-catalog");
	if (!INDEX_PREFIX.test(indexPrefix)) r.problems.push(`ELASTICSEARCH_INDEX_PREFIX ${JSON.stringify(indexPrefix)} must be lower-case letters, digits, '_' or '-'`);
	if (elastic) settings.elasticsearch = { url: elastic, indexPrefix };

	const graph = serviceUrl(r.string("NEO4J_URL", ""), "NEO4J_URL", NEO4J_SCHEMES, r.problems);
	const user = r.string("NEO4J_USER", "");
	const password = r.string("NEO4J_PASSWORD", "");
	const database = r.string("NEO4J_DATABASE", "");
	if (graph) {
		if (!user) r.problems.push("NEO4J_USER is required with NEO4J_URL");
		if (!password) r.problems.push("NEO4J_PASSWORD is required with NEO4J_URL");
		settings.neo4j = { url: graph, user, password, database: database || "neo4j" };
	} else if (user || password || database) {
		// Credentials without a server are a mistake, not a silent fallback to the embedded graph.
		r.problems.push("NEO4J_USER, NEO4J_PASSWORD and NEO4J_DATABASE need NEO4J_URL");
	}
	return settings;
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

	const dataDirPath = isAbsolute(dataDir) ? dataDir : resolve(PROJECT_ROOT, dataDir);
	const llmUrl = r.string("INTENT_LLM_URL", "");
	const llmApiKey = r.string("INTENT_LLM_API_KEY", "");
	if (Boolean(llmUrl) !== Boolean(llmApiKey)) r.problems.push("INTENT_LLM_URL and INTENT_LLM_API_KEY: set both or neither");
	if (llmUrl && !HTTP_URL.test(llmUrl)) r.problems.push(`INTENT_LLM_URL: ${JSON.stringify(maskUrl(llmUrl))} is not an http(s) URL`);
	// Read ahead of the object because the assets section needs them; in this order, problems stay in the table's order.
	const logLevel = r.oneOf("LOG_LEVEL", LOG_LEVELS, "info");
	const gatewayHost = r.string("GATEWAY_HOST", "127.0.0.1");
	const gatewayPort = r.int("GATEWAY_PORT", 8080, 0, 65535);
	const storageUrl = r.string("STORAGE_URL", pathToFileURL(join(dataDirPath, "blobs")).href);
	const config: PlatformConfig = {
		natsServers,
		natsServerBin: r.string("NATS_SERVER_BIN", defaultNatsServerBin()),
		dataDir: dataDirPath,
		services,
		nodeId,
		logLevel,
		gatewayHost,
		gatewayPort,
		gateway: {
			maxBodyBytes: r.int("GATEWAY_MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
			liveMaxBufferedBytes: r.int("LIVE_MAX_BUFFERED_BYTES", 1024 * 1024, 16 * 1024, 256 * 1024 * 1024),
			liveIdleTimeoutSec: r.int("LIVE_IDLE_TIMEOUT_S", 60, 8, 960),
		},
		streamReplicas: r.int("STREAM_REPLICAS", 1, 1, 5),
		events: {
			maxDeliveries: r.int("EVENT_MAX_DELIVERIES", 5, 1, 100),
			ackWaitMs: r.int("EVENT_ACK_WAIT_MS", 30_000, 1_000, 3_600_000),
			retryBaseMs: r.int("EVENT_RETRY_BASE_MS", 500, 1, 600_000),
		},
		natsCredsFile: r.string("NATS_CREDS", "") ? resolve(PROJECT_ROOT, r.string("NATS_CREDS", "")) : undefined,
		natsAuthorityFile: resolve(PROJECT_ROOT, r.string("NATS_AUTHORITY", join(dataDirPath, "nats", "authority.json"))),
		execution: {
			runtime: r.oneOf("RUNTIME", RUNTIMES, "local"),
			heartbeatIntervalMs: r.int("RUN_HEARTBEAT_INTERVAL_MS", 5_000, 100, 300_000),
			credentialTtlSec: r.int("RUN_CREDENTIAL_TTL_S", 6 * 3600, 60, 30 * 86_400),
			maxRetries: r.int("RUN_MAX_RETRIES", 3, 0, 100),
			timeoutSec: r.int("RUN_TIMEOUT_S", 86_400, 1, 30 * 86_400),
			startTimeoutMs: r.int("RUN_START_TIMEOUT_MS", 600_000, 1_000, 86_400_000),
			sidecarNatsUrl: r.string("RUN_NATS_URL", "") || undefined,
			defaultImage: r.string("RUN_DEFAULT_IMAGE", "python:3.11-slim"),
			storageUrl,
			k8sNamespace: r.string("K8S_NAMESPACE", "savassan-training"),
			k8sSidecarImage: r.string("K8S_SIDECAR_IMAGE", "savassan/platform:0.1.0"),
		},
		intent:
			llmUrl && llmApiKey
				? { llm: { url: llmUrl, apiKey: llmApiKey, model: r.string("INTENT_LLM_MODEL", "gpt-4o-mini"), timeoutMs: r.int("INTENT_LLM_TIMEOUT_MS", 10_000, 100, 120_000) } }
				: {},
		assets: readAssets(r, env, { dataDir: dataDirPath, storageUrl, gatewayHost, gatewayPort }),
		catalog: readCatalog(r),
		authz: readAuthz(r),
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
