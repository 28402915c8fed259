import {
	DiscardPolicy,
	JetStreamApiCodes,
	JetStreamApiError,
	RetentionPolicy,
	StorageType,
	type JetStreamManager,
	type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { subjects } from "./subjects";

export interface StreamSpec {
	name: string;
	subjects: string[];
	/** Who writes into the stream; readers are declared by their consumers. */
	owner: string;
	description: string;
	maxAgeMs: number;
	/** 0 = unlimited. */
	maxBytes: number;
	/**
	 * `new` refuses a publish when the stream is full, so the publisher keeps the message (and retries) instead of
	 * the stream silently discarding old ones; used where nothing may be lost.
	 */
	discard: "old" | "new";
	duplicateWindowMs: number;
}

const DAY = 86_400_000;
const GIB = 1024 ** 3;

/** Every stream of the platform. */
export const STREAMS = {
	events: {
		name: "EVENTS",
		subjects: [subjects.allDomain()],
		owner: "each context publishes its own evt.<context>.*",
		description: "Domain events of every bounded context",
		maxAgeMs: 90 * DAY,
		maxBytes: 0,
		discard: "old",
		duplicateWindowMs: 10 * 60_000,
	},
	telemetry: {
		name: "TELEMETRY",
		subjects: [subjects.allTelemetry()],
		owner: "runner sidecars, each limited to its own run's subjects",
		description: "Heartbeats, events, logs and completion of training runs",
		maxAgeMs: 14 * DAY,
		maxBytes: 0,
		discard: "old",
		duplicateWindowMs: 10 * 60_000,
	},
	ingest: {
		name: "INGEST",
		subjects: [subjects.allIngest()],
		owner: "external producers, each limited to ingest.<source>.*",
		description: "Events from outside the platform, before validation",
		maxAgeMs: 14 * DAY,
		maxBytes: 0,
		discard: "old",
		duplicateWindowMs: 10 * 60_000,
	},
	audit: {
		name: "AUDIT",
		subjects: [subjects.allAudit()],
		owner: "each context publishes its own audit.<context>.*",
		description: "Audit trail of decisions and changes",
		maxAgeMs: 400 * DAY,
		maxBytes: 0,
		discard: "new",
		duplicateWindowMs: 10 * 60_000,
	},
	deadLetters: {
		name: "DEADLETTER",
		subjects: [subjects.allDeadLetters()],
		owner: "durable consumers that gave up on a message",
		description: "Messages no consumer could process, with the reason",
		maxAgeMs: 0,
		maxBytes: 8 * GIB,
		discard: "new",
		duplicateWindowMs: 10 * 60_000,
	},
} as const satisfies Record<string, StreamSpec>;

function streamConfig(spec: StreamSpec, replicas: number): Partial<StreamConfig> & { name: string } {
	return {
		name: spec.name,
		subjects: [...spec.subjects],
		description: spec.description,
		retention: RetentionPolicy.Limits,
		storage: StorageType.File,
		discard: spec.discard === "new" ? DiscardPolicy.New : DiscardPolicy.Old,
		max_age: nanos(spec.maxAgeMs),
		max_bytes: spec.maxBytes || -1,
		duplicate_window: nanos(spec.duplicateWindowMs),
		num_replicas: replicas,
		allow_direct: true,
	};
}

export class StreamSetupError extends Error {
	override name = "StreamSetupError";
}

/** Creates each stream or brings an existing one to its declared config; safe to run from every process at start. */
export async function ensureStreams(
	jsm: JetStreamManager,
	opts: { replicas: number; specs?: StreamSpec[] },
): Promise<{ created: string[]; updated: string[] }> {
	const created: string[] = [];
	const updated: string[] = [];
	for (const spec of opts.specs ?? Object.values(STREAMS)) {
		const wanted = streamConfig(spec, opts.replicas);
		try {
			let current;
			try {
				current = (await jsm.streams.info(spec.name)).config;
			} catch (err) {
				if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
			}
			if (!current) {
				try {
					await jsm.streams.add(wanted);
					created.push(spec.name);
					continue;
				} catch (err) {
					// Another process may have created it between our info and add: then check it like an existing one.
					current = await jsm.streams.info(spec.name).then(
						(info) => info.config,
						() => Promise.reject(err),
					);
				}
			}
			const differs = (Object.keys(wanted) as (keyof StreamConfig)[]).some(
				(k) => JSON.stringify(current[k]) !== JSON.stringify(wanted[k]),
			);
			if (differs) {
				await jsm.streams.update(spec.name, wanted);
				updated.push(spec.name);
			}
		} catch (err) {
			throw new StreamSetupError(`cannot set up stream ${spec.name} (${spec.subjects.join(", ")}): ${(err as Error).message}`);
		}
	}
	return { created, updated };
}
