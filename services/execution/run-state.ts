import type { Done } from "../../events/telemetry";
import type { FailureReason, Run, RunStatus, Transition } from "./run";

/**
 * The run state machine, the only place a run's status changes. Each command returns the new document and the
 * transitions it made (each becomes a domain event); an illegal one throws before anything is changed. Inputs
 * that are stale (an earlier attempt's telemetry, a second `done`) change nothing, so handlers can be replayed.
 */

const ALLOWED: Record<RunStatus, readonly RunStatus[]> = {
	PENDING: ["QUEUED", "FAILED", "CANCELLED"],
	QUEUED: ["RUNNING", "FAILED", "CANCELLED"],
	// RUNNING → QUEUED is an automatic retry (a new attempt) after the workload was lost.
	RUNNING: ["SUCCEEDED", "FAILED", "CANCELLED", "QUEUED"],
	SUCCEEDED: [],
	// Manual retry.
	FAILED: ["QUEUED"],
	CANCELLED: ["QUEUED"],
};

const TERMINAL: readonly RunStatus[] = ["SUCCEEDED", "FAILED", "CANCELLED"];

export function isTerminal(status: RunStatus): boolean {
	return TERMINAL.includes(status);
}

export class IllegalTransitionError extends Error {
	override name = "IllegalTransitionError";
	constructor(
		readonly runId: string,
		readonly from: RunStatus,
		readonly to: RunStatus,
	) {
		super(
			`run ${runId} cannot go from ${from} to ${to}` +
				(ALLOWED[from].length ? ` (from ${from} it may go to ${ALLOWED[from].join(", ")})` : ` (${from} is final)`),
		);
	}
}

export interface Step {
	run: Run;
	transitions: Transition[];
}

const MAX_HISTORY = 200;

function unchanged(run: Run): Step {
	return { run, transitions: [] };
}

/** Applies one transition on a copy; `patch` sets the fields that go with it. */
function go(
	run: Run,
	to: RunStatus,
	at: Date,
	patch: Partial<Run> = {},
	why: { reason?: string; failure_reason?: FailureReason } = {},
): Step {
	if (!ALLOWED[run.status].includes(to)) throw new IllegalTransitionError(run.id, run.status, to);
	const next: Run = { ...run, ...patch, status: to };
	const t: Transition = { from: run.status, to, attempt: next.attempt, at: at.toISOString(), published: false, ...why };
	next.history = [...run.history, t].slice(-MAX_HISTORY);
	return { run: next, transitions: [t] };
}

function chain(first: Step, then: (run: Run) => Step): Step {
	const second = then(first.run);
	return { run: second.run, transitions: [...first.transitions, ...second.transitions] };
}

/** The workload was requested from the runtime. */
export function queue(run: Run, at: Date): Step {
	return go(run, "QUEUED", at, { queued_at: at.toISOString() });
}

/** The sidecar of `attempt` reported that the trainer started. */
export function start(run: Run, attempt: number, startedAt: Date, at: Date): Step {
	if (attempt !== run.attempt || run.status !== "QUEUED") return unchanged(run);
	return go(run, "RUNNING", at, { started_at: startedAt.toISOString() });
}

/** The sidecar of `done.attempt` reported the trainer's exit. A done that arrives before `started` implies it. */
export function complete(run: Run, done: Done, at: Date): Step {
	if (done.attempt !== run.attempt || !["QUEUED", "RUNNING"].includes(run.status)) return unchanged(run);
	const running = run.status === "QUEUED" ? start(run, done.attempt, new Date(done.started_at), at) : unchanged(run);
	if (done.interrupted && done.status === "failed") {
		// Stopped from outside (platform shutdown, eviction): like a lost workload, retried while retries are left.
		const why = `attempt ${done.attempt} was interrupted${done.reason ? ` (${done.reason})` : ""}`;
		return chain(running, (r) => lose(r, done.attempt, "runtime_failure", why, at));
	}
	return chain(running, (r) => {
		const result = {
			completed_at: at.toISOString(),
			exit_code: done.exit_code,
			signal: done.signal,
			artifacts: done.artifacts,
			metrics: done.metrics,
		};
		if (done.status === "succeeded") return go(r, "SUCCEEDED", at, result);
		const message = done.reason ?? (done.signal ? `trainer killed by ${done.signal}` : `trainer exited with code ${done.exit_code}`);
		return go(r, "FAILED", at, { ...result, failure_reason: "runtime_failure", failure_message: message }, {
			reason: message,
			failure_reason: "runtime_failure",
		});
	});
}

/** The run cannot go on: no retry. */
export function fail(run: Run, reason: FailureReason, message: string, at: Date): Step {
	if (isTerminal(run.status)) return unchanged(run);
	return go(run, "FAILED", at, { completed_at: at.toISOString(), failure_reason: reason, failure_message: message }, {
		reason: message,
		failure_reason: reason,
	});
}

export function cancel(run: Run, at: Date, reason = "cancelled by request"): Step {
	if (run.status === "CANCELLED") return unchanged(run);
	return go(run, "CANCELLED", at, { completed_at: at.toISOString(), failure_reason: "cancelled", failure_message: reason }, {
		reason,
		failure_reason: "cancelled",
	});
}

function nextAttempt(run: Run, at: Date, automatic: boolean, reason: string, failure?: FailureReason): Step {
	return go(
		run,
		"QUEUED",
		at,
		{
			attempt: run.attempt + 1,
			retry_count: run.retry_count + 1,
			queued_at: at.toISOString(),
			started_at: undefined,
			completed_at: undefined,
			exit_code: undefined,
			signal: undefined,
			failure_reason: undefined,
			failure_message: undefined,
		},
		{ reason: automatic ? `automatic retry: ${reason}` : reason, failure_reason: failure },
	);
}

/**
 * The workload of the current attempt is gone without a result (no heartbeat for 3 intervals, a vanished pod):
 * a new attempt while retries are left, else FAILED.
 */
export function lose(run: Run, attempt: number, reason: FailureReason, message: string, at: Date): Step {
	if (attempt !== run.attempt || !["QUEUED", "RUNNING"].includes(run.status)) return unchanged(run);
	if (run.status === "RUNNING" && run.retry_count < run.max_retries) return nextAttempt(run, at, true, message, reason);
	return fail(run, reason, message, at);
}

/** A manual retry of a failed or cancelled run: a new attempt, whatever the retry budget. */
export function retry(run: Run, at: Date): Step {
	return nextAttempt(run, at, false, "retried by request");
}

/** Marks transitions as published once their events are stored. */
export function markPublished(run: Run, published: Transition[]): Run {
	const keys = new Set(published.map(transitionKey));
	return { ...run, history: run.history.map((t) => (keys.has(transitionKey(t)) ? { ...t, published: true } : t)) };
}

/** Unique per run: a status is entered at most once per attempt. */
export function transitionKey(t: Pick<Transition, "attempt" | "to">): string {
	return `${t.attempt}:${t.to}`;
}
