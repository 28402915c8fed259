/**
 * Every subject the platform uses is built here; nothing else writes a subject string.
 *
 * | family     | pattern                                  | owner (who may publish)                  |
 * |------------|------------------------------------------|------------------------------------------|
 * | domain     | evt.<context>.<entity>.<verb>            | the service of <context>                 |
 * | telemetry  | tlm.<workspace>.<run>.<kind>             | the runner sidecar of <run> (per-run key)|
 * | ingest     | ingest.<source>.<type>                   | the external producer <source>           |
 * | audit      | audit.<context>.<kind>                   | the service of <context>                 |
 * | dead letter| dlq.<stream>.<consumer>                  | the consumer that gave up                |
 * | API        | savassan.v1.<endpoint tokens>            | any authenticated NATS client (requests) |
 */

const TOKEN = /^[A-Za-z0-9_-]+$/;

export class SubjectTokenError extends Error {
	override name = "SubjectTokenError";
}

/** One subject token: no dots, wildcards or spaces, so a value can never widen or split a subject. */
export function token(kind: string, value: string): string {
	if (typeof value !== "string" || !TOKEN.test(value)) {
		throw new SubjectTokenError(`${kind} ${JSON.stringify(value)} is not a valid subject token (letters, digits, '-', '_')`);
	}
	return value;
}

/** The NATS services API's subject root (versioned: a breaking change gets v2 beside it). */
export const API_PREFIX = "savassan.v1";

export const TELEMETRY_KINDS = ["heartbeat", "event", "done", "log"] as const;
export type TelemetryKind = (typeof TELEMETRY_KINDS)[number];

export const subjects = {
	domain: (context: string, entity: string, verb: string) =>
		`evt.${token("context", context)}.${token("entity", entity)}.${token("verb", verb)}`,
	allDomain: () => "evt.>",
	/** Every event of one context's entity (`evt.<context>.<entity>.*`). */
	domainOfEntity: (context: string, entity: string) => `evt.${token("context", context)}.${token("entity", entity)}.*`,
	/** Every event of one context (`evt.<context>.>`). */
	domainOfContext: (context: string) => `evt.${token("context", context)}.>`,

	telemetry: (workspace: string, runId: string, kind: TelemetryKind) =>
		`tlm.${token("workspace", workspace)}.${token("run", runId)}.${token("kind", kind)}`,
	/** Everything one run may publish: the whole grant of its sidecar credential. */
	telemetryOfRun: (workspace: string, runId: string) => `tlm.${token("workspace", workspace)}.${token("run", runId)}.>`,
	/** One kind from every run (what a telemetry consumer filters on). */
	telemetryOfKind: (kind: TelemetryKind) => `tlm.*.*.${token("kind", kind)}`,
	allTelemetry: () => "tlm.>",
	/** Reply inboxes of one run's sidecar (its credential may subscribe to these only). */
	inboxOfRun: (runId: string) => `_INBOX_${token("run", runId)}`,

	ingest: (source: string, type: string) => `ingest.${token("source", source)}.${token("type", type)}`,
	ingestOfSource: (source: string) => `ingest.${token("source", source)}.>`,
	/** One ingest type from every source (what the ingest gate's consumer of that type filters on). */
	ingestOfType: (type: string) => `ingest.*.${token("type", type)}`,
	/** Reply inboxes of an external producer (its credential may subscribe to these only: JetStream acks). */
	inboxOfProducer: (source: string) => `_INBOX_producer_${token("source", source)}`,
	allIngest: () => "ingest.>",

	audit: (context: string, kind: string) => `audit.${token("context", context)}.${token("kind", kind)}`,
	allAudit: () => "audit.>",
	/** Everything one context audits. */
	auditOfContext: (context: string) => `audit.${token("context", context)}.>`,

	/** An endpoint of the NATS services API, e.g. ["runs", "get"] → `savassan.v1.runs.get`. */
	api: (endpoint: readonly string[]) => `${API_PREFIX}.${endpoint.map((t) => token("endpoint", t)).join(".")}`,
	allApi: () => `${API_PREFIX}.>`,
	/** Discovery of NATS services (`$SRV.PING|INFO|STATS[.<name>[.<id>]]`), answered by every service. */
	serviceDiscovery: () => "$SRV.>",
	/** Reply inboxes of a NATS API client (its credential may subscribe to these only). */
	inboxOfClient: (name: string) => `_INBOX_client_${token("client", name)}`,

	deadLetter: (stream: string, consumer: string) => `dlq.${token("stream", stream)}.${token("consumer", consumer)}`,
	deadLettersOfStream: (stream: string) => `dlq.${token("stream", stream)}.*`,
	deadLettersOfConsumer: (consumer: string) => `dlq.*.${token("consumer", consumer)}`,
	allDeadLetters: () => "dlq.>",
} as const;

/** The tokens of a dead-letter subject, or undefined for any other subject. */
export function parseDeadLetterSubject(subject: string): { stream: string; consumer: string } | undefined {
	const parts = subject.split(".");
	return parts.length === 3 && parts[0] === "dlq" ? { stream: parts[1]!, consumer: parts[2]! } : undefined;
}
