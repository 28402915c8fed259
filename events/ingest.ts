import { SCHEMA_BASE_URI, type FieldError } from "../lib/schemas";
import { defineEvent, type EventDefinition } from "./definition";
import { STREAMS } from "./streams";
import { subjects, token } from "./subjects";

/**
 * What external producers may publish on `ingest.<source>.<type>` (INGEST stream): each accepted `<type>`, the
 * JSON Schema its payload must pass (`schemas/ingest/<type>.json`), and the domain event the ingest gate turns a
 * valid one into. Anything else is dead-lettered with the reason.
 */

/** What the gate adds to every forwarded payload: who sent it and where it is in INGEST. */
export interface IngestReceived<P> {
	/** The `<source>` token of the subject, which the producer's credential restricts. */
	source: string;
	/** INGEST stream sequence of the original (also the forwarded event's de-duplication key). */
	ingest_seq: number;
	/** When INGEST stored the original. */
	received_at: string;
	payload: P;
}

/** `ingest.<source>.dataset_version`: an external data platform announces a dataset version. */
export interface DatasetVersionAnnounced {
	workspace: string;
	dataset_id: string;
	version: string;
	manifest_uri: string;
	file_count: number;
	bytes: number;
	classes?: string[];
	class_distribution?: Record<string, number>;
	owner?: string;
}

export const IngestDatasetVersionReceived = defineEvent<IngestReceived<DatasetVersionAnnounced>>("ingest", "dataset_version", "received");

export interface IngestType<P = unknown> {
	/** The `<type>` subject token. */
	type: string;
	/** Schema of what the producer publishes. */
	schemaId: string;
	/** The domain event a valid one becomes. */
	event: EventDefinition<IngestReceived<P>>;
}

function ingestType<P>(type: string, event: EventDefinition<IngestReceived<P>>): IngestType<P> {
	return { type: token("type", type), schemaId: `${SCHEMA_BASE_URI}ingest/${type}.json`, event };
}

export const INGEST_TYPES: readonly IngestType[] = [ingestType("dataset_version", IngestDatasetVersionReceived)];

/** The ingest gate's durable consumer of INGEST (dead letters land on `dlq.INGEST.<this>`). */
export const INGEST_GATE_DURABLE = token("consumer", "gateway__ingest");

/** The source and accepted type of an ingest subject; `type` is undefined for a type not accepted. */
export function ingestSubject(subject: string): { source: string; token: string; type?: IngestType } | undefined {
	const [, source = "", token = ""] = subject.split(".");
	try {
		if (subjects.ingest(source, token) !== subject) return undefined;
	} catch {
		return undefined; // not tokens: not an ingest subject
	}
	const type = INGEST_TYPES.find((t) => t.type === token);
	return { source, token, ...(type ? { type } : {}) };
}

/** The de-duplication id of the event forwarded from INGEST's `seq`: a redelivery is stored once. */
export const ingestMsgId = (seq: number): string => `${STREAMS.ingest.name}:${seq}:forwarded`;

/**
 * What is wrong with an ingest message (empty when it may be forwarded): an unknown type names the subject's
 * type token; a payload that fails its schema names each bad field.
 */
export function ingestProblems(subject: string, payload: unknown, validate: (schemaId: string, payload: unknown) => FieldError[]): FieldError[] {
	const parsed = ingestSubject(subject);
	if (!parsed?.type) {
		const accepted = INGEST_TYPES.map((t) => t.type).join(", ");
		return [{ field: "type", message: `${JSON.stringify(parsed?.token ?? subject)} is not an accepted ingest type (accepted: ${accepted})`, keyword: "enum" }];
	}
	return validate(parsed.type.schemaId, payload);
}
