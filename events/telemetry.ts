import { SCHEMA_BASE_URI } from "../lib/schemas";
import type { EventDefinition } from "./definition";
import { STREAMS } from "./streams";
import { subjects, type TelemetryKind } from "./subjects";

/**
 * What a runner sidecar publishes on `tlm.<workspace>.<run>.<kind>` (TELEMETRY stream), described by
 * `schemas/telemetry/<kind>.v1.json`. Every message names its run, workspace and attempt, so a consumer can check
 * them against the subject and ignore a superseded attempt.
 */
export interface TelemetryBase {
	run_id: string;
	workspace: string;
	attempt: number;
	/** Per attempt and kind, from 0: with them it makes the de-duplication id. */
	seq: number;
	at: string;
}

export type Metrics = Record<string, number>;

export interface Progress {
	epoch?: number;
	epochs?: number;
	step?: number;
	steps?: number;
	fraction?: number;
}

export interface GpuSample {
	index: number;
	util_percent?: number;
	memory_bytes?: number;
	memory_total_bytes?: number;
}

export interface Resources {
	cpu_percent?: number;
	memory_bytes?: number;
	gpus?: GpuSample[];
}

export interface Artifact {
	uri: string;
	/** Path relative to the checkpoint directory. */
	path: string;
	bytes: number;
	sha256: string;
}

export interface Heartbeat extends TelemetryBase {
	progress?: Progress;
	metrics: Metrics;
	resources?: Resources;
}

export interface RunnerEvent extends TelemetryBase {
	type: "started" | "epoch_end" | "checkpoint_saved";
	epoch?: number;
	epochs?: number;
	metrics?: Metrics;
	artifact?: Artifact;
}

export interface Done extends TelemetryBase {
	status: "succeeded" | "failed";
	exit_code: number | null;
	signal: string | null;
	started_at: string;
	reason?: string;
	/** The sidecar was told to stop (platform shutdown, pod eviction): a retryable interruption, not the trainer's failure. */
	interrupted?: boolean;
	metrics: Metrics;
	artifacts: Artifact[];
}

export interface LogBatch extends TelemetryBase {
	stream: "stdout" | "stderr";
	lines: string[];
}

export interface TelemetryPayloads {
	heartbeat: Heartbeat;
	event: RunnerEvent;
	done: Done;
	log: LogBatch;
}

/** Telemetry of one kind from every run, as a consumable definition (filter `tlm.*.*.<kind>`). */
function defineTelemetry<K extends TelemetryKind>(kind: K): EventDefinition<TelemetryPayloads[K]> {
	return {
		type: `telemetry.${kind}`,
		context: "runner",
		subject: subjects.telemetryOfKind(kind),
		stream: STREAMS.telemetry.name,
		version: 1,
		schemaId: `${SCHEMA_BASE_URI}telemetry/${kind}.v1.json`,
	};
}

export const Telemetry = {
	heartbeat: defineTelemetry("heartbeat"),
	event: defineTelemetry("event"),
	done: defineTelemetry("done"),
	log: defineTelemetry("log"),
} as const;

/** De-duplication id of a telemetry message: a re-publish after a reconnect is stored once. */
export function telemetryMsgId(kind: TelemetryKind, m: TelemetryBase): string {
	return `${m.run_id}:${m.attempt}:${kind}:${m.seq}`;
}

/** True when the payload's run and workspace are the ones in its subject (a sidecar may only speak for its run). */
export function matchesSubject(subject: string, m: TelemetryBase): boolean {
	const [, workspace, run] = subject.split(".");
	return workspace === m.workspace && run === m.run_id;
}
