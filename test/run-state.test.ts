import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Done } from "../events/telemetry";
import { newRun, RUN_STATUSES, type Run, type RunStatus } from "../services/execution/run";
import * as machine from "../services/execution/run-state";

const T0 = new Date("2026-01-01T00:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);

function run(status: RunStatus = "PENDING", patch: Partial<Run> = {}): Run {
	const r = newRun("run-1", { workspace: "ws", command: ["train"] }, { image: "img", maxRetries: 2, timeoutSec: 60, heartbeatIntervalMs: 1000 }, "trace-1", T0);
	return { ...r, status, ...patch };
}

function done(status: "succeeded" | "failed", attempt = 1): Done {
	return {
		run_id: "run-1",
		workspace: "ws",
		attempt,
		seq: 0,
		at: at(9).toISOString(),
		status,
		exit_code: status === "succeeded" ? 0 : 3,
		signal: null,
		started_at: at(2).toISOString(),
		metrics: { loss: 0.1 },
		artifacts: [],
	};
}

describe("run state machine", () => {
	it("allows exactly the documented transitions", () => {
		const allowed = new Set([
			"PENDING>QUEUED", "PENDING>FAILED", "PENDING>CANCELLED",
			"QUEUED>RUNNING", "QUEUED>FAILED", "QUEUED>CANCELLED",
			"RUNNING>SUCCEEDED", "RUNNING>FAILED", "RUNNING>CANCELLED", "RUNNING>QUEUED",
			"FAILED>QUEUED", "CANCELLED>QUEUED",
		]);
		// Drive every (from, to) pair through the command that aims at `to`.
		const attempts: Record<RunStatus, (r: Run) => machine.Step> = {
			PENDING: () => assert.fail("nothing goes back to PENDING"),
			QUEUED: (r) => (r.status === "PENDING" ? machine.queue(r, at(1)) : r.status === "RUNNING" ? machine.lose(r, 1, "lost_heartbeat", "x", at(1)) : machine.retry(r, at(1))),
			RUNNING: (r) => machine.start(r, r.attempt, at(1), at(1)),
			SUCCEEDED: (r) => (r.status === "QUEUED" ? { run: r, transitions: [] } : machine.complete(r, done("succeeded", r.attempt), at(1))),
			FAILED: (r) => machine.fail(r, "runtime_failure", "boom", at(1)),
			CANCELLED: (r) => machine.cancel(r, at(1)),
		};
		for (const from of RUN_STATUSES) {
			for (const to of RUN_STATUSES) {
				if (to === "PENDING") continue;
				const key = `${from}>${to}`;
				const before = run(from);
				let step: machine.Step | undefined;
				let error: unknown;
				try {
					step = attempts[to](before);
				} catch (err) {
					error = err;
				}
				if (allowed.has(key)) {
					assert.ok(!error, `${key} must be allowed: ${error}`);
					if (key === "QUEUED>SUCCEEDED") continue;
					assert.equal(step!.run.status, to, key);
					assert.deepEqual(step!.transitions.map((t) => `${t.from}>${t.to}`), [key]);
				} else if (error) {
					assert.ok(error instanceof machine.IllegalTransitionError, `${key}: ${error}`);
					assert.match((error as Error).message, new RegExp(`cannot go from ${from} to ${to}`));
					assert.equal(before.status, from, "nothing half-applied");
				} else {
					// Idempotent no-ops: the same state again, or input that no longer applies.
					assert.deepEqual(step!.transitions, [], `${key} changed nothing`);
					assert.equal(step!.run, before);
				}
			}
		}
	});

	it("a done before `started` goes through RUNNING; a second done changes nothing", () => {
		const first = machine.complete(run("QUEUED"), done("succeeded"), at(10));
		assert.deepEqual(first.transitions.map((t) => t.to), ["RUNNING", "SUCCEEDED"]);
		assert.equal(first.run.started_at, at(2).toISOString());
		assert.equal(first.run.exit_code, 0);
		assert.deepEqual(first.run.metrics, { loss: 0.1 });
		const again = machine.complete(first.run, done("failed"), at(11));
		assert.equal(again.run, first.run);
		assert.deepEqual(again.transitions, []);
	});

	it("telemetry of an earlier attempt is ignored", () => {
		const r = run("RUNNING", { attempt: 2 });
		assert.deepEqual(machine.complete(r, done("failed", 1), at(5)).transitions, []);
		assert.deepEqual(machine.start(run("QUEUED", { attempt: 2 }), 1, at(1), at(1)).transitions, []);
		assert.deepEqual(machine.lose(r, 1, "lost_heartbeat", "x", at(5)).transitions, []);
	});

	it("a lost attempt is retried until max_retries, then fails", () => {
		let r = run("RUNNING");
		for (let i = 1; i <= 2; i++) {
			const step = machine.lose(r, r.attempt, "lost_heartbeat", "silent", at(i));
			assert.equal(step.run.status, "QUEUED");
			assert.equal(step.run.attempt, i + 1);
			assert.equal(step.run.retry_count, i);
			assert.equal(step.transitions[0]!.failure_reason, "lost_heartbeat");
			assert.match(step.transitions[0]!.reason!, /automatic retry: silent/);
			r = machine.start(step.run, step.run.attempt, at(i), at(i)).run;
		}
		const last = machine.lose(r, r.attempt, "lost_heartbeat", "silent", at(9));
		assert.equal(last.run.status, "FAILED");
		assert.equal(last.run.failure_reason, "lost_heartbeat");
		assert.equal(last.run.completed_at, at(9).toISOString());
	});

	it("an interrupted attempt (the sidecar was stopped) is retried like a lost one, not failed", () => {
		const interrupted = { ...done("failed"), exit_code: 143, reason: "trainer exited with code 143", interrupted: true };
		const step = machine.complete(run("RUNNING"), interrupted, at(5));
		assert.equal(step.run.status, "QUEUED");
		assert.equal(step.run.attempt, 2);
		assert.match(step.transitions[0]!.reason!, /automatic retry: attempt 1 was interrupted \(trainer exited with code 143\)/);
		const spent = machine.complete(run("RUNNING", { retry_count: 2 }), interrupted, at(5));
		assert.equal(spent.run.status, "FAILED");
		assert.equal(spent.run.failure_reason, "runtime_failure");
	});

	it("a QUEUED attempt that never started fails (no retry)", () => {
		const step = machine.lose(run("QUEUED"), 1, "start_timeout", "did not start", at(5));
		assert.equal(step.run.status, "FAILED");
		assert.equal(step.run.failure_reason, "start_timeout");
	});

	it("a manual retry clears the last attempt's result", () => {
		const failed = machine.complete(run("RUNNING"), done("failed"), at(3)).run;
		assert.equal(failed.failure_reason, "runtime_failure");
		assert.match(failed.failure_message!, /exited with code 3/);
		const retried = machine.retry(failed, at(4)).run;
		assert.equal(retried.status, "QUEUED");
		assert.equal(retried.attempt, 2);
		assert.equal(retried.exit_code, undefined);
		assert.equal(retried.failure_reason, undefined);
	});

	it("marks published transitions by attempt and status", () => {
		const s1 = machine.queue(run(), at(1));
		const s2 = machine.start(s1.run, 1, at(2), at(2));
		const marked = machine.markPublished(s2.run, s1.transitions);
		assert.deepEqual(marked.history.map((t) => t.published), [true, false]);
		assert.equal(machine.transitionKey(s2.transitions[0]!), "1:RUNNING");
	});
});
