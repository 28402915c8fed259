import { CURATION_EVENTS } from "./curation";
import { defineEvent } from "./definition";
import { IngestDatasetVersionReceived } from "./ingest";

/**
 * Every domain event of the platform. A context adds its events here (with the schema file beside them in
 * `schemas/events/`); the catalog test checks that each one has its schema.
 */

export interface DeadLetterReplayed {
	dead_letter_seq: number;
	stream: string;
	subject: string;
	consumer: string;
	replayed_seq: number;
}

export const DeadLetterReplayed = defineEvent<DeadLetterReplayed>("deadletters", "message", "replayed");

/** A run changed status (the execution context's state machine); `run` is the document after the change. */
export interface RunTransitioned {
	run_id: string;
	workspace: string;
	from: string;
	to: string;
	attempt: number;
	at: string;
	reason?: string;
	failure_reason?: string;
	run: Record<string, unknown>;
}

export const RunTransitioned = defineEvent<RunTransitioned>("execution", "run", "transitioned");

/** A telemetry alert rule's condition held on a run's heartbeats (raised once while it holds). */
export interface TelemetryAlertRaised {
	rule_id: string;
	rule_name: string;
	run_id: string;
	workspace: string;
	attempt: number;
	metric: string;
	op: ">" | ">=" | "<" | "<=";
	threshold: number;
	value: number;
	/** Message time of the heartbeat that raised it. */
	at: string;
	/** TELEMETRY stream sequence of that heartbeat (part of the de-duplication id). */
	heartbeat_seq: number;
}

/** A raised telemetry alert's condition no longer holds. */
export interface TelemetryAlertResolved extends TelemetryAlertRaised {
	raised_at: string;
}

export const TelemetryAlertRaised = defineEvent<TelemetryAlertRaised>("telemetry", "alert", "raised");
export const TelemetryAlertResolved = defineEvent<TelemetryAlertResolved>("telemetry", "alert", "resolved");

/** An entity was registered in the catalog (de-duplicated per entity: `catalog:<kind>:<id>:registered`). */
export interface CatalogEntityRegistered {
	kind: "dataset" | "dataset_version" | "model" | "model_version" | "run" | "endpoint";
	id: string;
	workspace: string;
}

/** A model's alias (stage) was pointed at another version, by a promotion or a rollback. */
export interface CatalogAliasChanged {
	model_id: string;
	/** The model's workspace (absent in events published before it was added). */
	workspace?: string;
	alias: string;
	op: "promote" | "rollback";
	/** Absent for the alias's first promotion. */
	from?: string;
	to: string;
	actor: string;
	at: string;
	reason?: string;
}

export const CatalogEntityRegistered = defineEvent<CatalogEntityRegistered>("catalog", "entity", "registered");
export const CatalogAliasChanged = defineEvent<CatalogAliasChanged>("catalog", "alias", "changed");

/**
 * A message was parsed and its parse stored, whatever its status (`needs_clarification` and `invalid` too: the
 * UI shows the questions). De-duplicated per parse: the message id is the parse id.
 */
export interface IntentParseRecorded {
	parse_id: string;
	workspace: string;
	session_id: string;
	turn: number;
	request_id?: string;
	status: "complete" | "needs_clarification" | "invalid";
	task_type?: string;
	model_name?: string;
	confidence: number;
	/** Fields still open (missing or refused), for a status other than complete. */
	open: string[];
}

export const IntentParseRecorded = defineEvent<IntentParseRecorded>("intent", "parse", "recorded");

/** An uploaded asset matched its announced size and sha256 (de-duplicated per asset: `<uid>:stored`). */
export interface AssetStored {
	uid: string;
	workspace: string;
	name: string;
	size: number;
	sha256: string;
	content_type: string;
	blob_key: string;
	at: string;
}

/** An uploaded asset did not match its announced size or sha256; its bytes were deleted (de-duplicated: `<uid>:rejected`). */
export interface AssetRejected {
	uid: string;
	workspace: string;
	name: string;
	reason: string;
	at: string;
}

export const AssetStored = defineEvent<AssetStored>("assets", "asset", "stored");
export const AssetRejected = defineEvent<AssetRejected>("assets", "asset", "rejected");

export const EVENT_CATALOG = [
	DeadLetterReplayed,
	RunTransitioned,
	TelemetryAlertRaised,
	TelemetryAlertResolved,
	CatalogEntityRegistered,
	CatalogAliasChanged,
	IntentParseRecorded,
	AssetStored,
	AssetRejected,
	IngestDatasetVersionReceived,
	...CURATION_EVENTS,
] as const;
