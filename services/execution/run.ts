import type { Artifact, Metrics } from "../../events/telemetry";

/** The run document: one training run across all its attempts. Plain data, stored as JSON. */

export const RUN_STATUSES = ["PENDING", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const FAILURE_REASONS = ["runtime_failure", "lost_heartbeat", "start_timeout", "data_validation", "cancelled"] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface Transition {
	from: RunStatus;
	to: RunStatus;
	/** The attempt the run is on after the transition. */
	attempt: number;
	at: string;
	reason?: string;
	failure_reason?: FailureReason;
	/** False until the transition's domain event is stored in JetStream (the run document is its outbox). */
	published: boolean;
}

export interface RunResources {
	cpu?: string;
	memory?: string;
	gpus?: number;
	gpu_type?: string;
}

/** What a client submits (after params validation). */
export interface RunRequest {
	workspace: string;
	/** Client request id: submitting the same id again returns the same run. */
	request_id?: string;
	intent_ref?: string;
	plan_ref?: string;
	dataset_version?: string;
	image?: string;
	command: string[];
	env?: Record<string, string>;
	resources?: RunResources;
	max_retries?: number;
	timeout_sec?: number;
	heartbeat_interval_ms?: number;
}

export interface Run {
	id: string;
	workspace: string;
	/** The user who submitted it from an edge; absent for the platform's own submissions. */
	owner?: string;
	request_id?: string;
	intent_ref?: string;
	plan_ref?: string;
	dataset_version?: string;
	image: string;
	command: string[];
	env: Record<string, string>;
	resources: RunResources;
	timeout_sec: number;
	heartbeat_interval_ms: number;
	status: RunStatus;
	attempt: number;
	retry_count: number;
	max_retries: number;
	created_at: string;
	queued_at?: string;
	started_at?: string;
	completed_at?: string;
	trace_id: string;
	exit_code?: number | null;
	signal?: string | null;
	failure_reason?: FailureReason;
	failure_message?: string;
	artifacts: Artifact[];
	metrics: Metrics;
	/** Every transition, oldest first. */
	history: Transition[];
}

export interface RunDefaults {
	image: string;
	maxRetries: number;
	timeoutSec: number;
	heartbeatIntervalMs: number;
}

export function newRun(id: string, req: RunRequest, defaults: RunDefaults, traceId: string, now: Date, owner?: string): Run {
	return {
		id,
		workspace: req.workspace,
		...(owner !== undefined ? { owner } : {}),
		request_id: req.request_id,
		intent_ref: req.intent_ref,
		plan_ref: req.plan_ref,
		dataset_version: req.dataset_version,
		image: req.image ?? defaults.image,
		command: req.command,
		env: req.env ?? {},
		resources: req.resources ?? {},
		timeout_sec: req.timeout_sec ?? defaults.timeoutSec,
		heartbeat_interval_ms: req.heartbeat_interval_ms ?? defaults.heartbeatIntervalMs,
		status: "PENDING",
		attempt: 1,
		retry_count: 0,
		max_retries: req.max_retries ?? defaults.maxRetries,
		created_at: now.toISOString(),
		trace_id: traceId,
		artifacts: [],
		metrics: {},
		history: [],
	};
}

/** The fields of a request that decide what runs: a repeated request id must carry the same ones. */
export function sameRequest(run: Run, req: RunRequest): boolean {
	const wanted = JSON.stringify([req.workspace, req.command, req.image ?? run.image, req.env ?? {}, req.resources ?? {}]);
	return wanted === JSON.stringify([run.workspace, run.command, run.image, run.env, run.resources]);
}
