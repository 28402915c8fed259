import type { JetStreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { AckedPublisher } from "../events/acked-publisher";
import type { RunTransitioned } from "../events/catalog";
import { STREAMS } from "../events/streams";
import { readAfter } from "../events/stream-reader";
import { subjects } from "../events/subjects";
import type { Heartbeat } from "../events/telemetry";
import { sha256OfFile } from "../lib/blob";
import { credsAuthenticator } from "../lib/nats-auth";
import { PROJECT_ROOT } from "../lib/paths";
import { executionService } from "../services/execution/execution.service";
import type { Run } from "../services/execution/run";
import { startBroker, testConfig } from "./support/broker";
import { isAlive } from "./support/cli";
import { type TestNats } from "./support/nats";
import { openServiceSuite, type ServiceSuite } from "./support/suite";
import { sleep, waitFor } from "./support/wait";

const TRAINER = join(PROJECT_ROOT, "examples", "trainer.js");
const HEARTBEAT_MS = 300;

let suite: ServiceSuite;
let nats: TestNats;
let broker: ServiceBroker;
let jsm: JetStreamManager;
let dataDir: string;
let env: Record<string, string>;

async function startExecution(nodeId: string): Promise<ServiceBroker> {
	return startBroker(nats.endpoint, nodeId, [executionService(testConfig(env), { nats: nats.endpoint })], env);
}

function trainer(...args: string[]): string[] {
	return [process.execPath, TRAINER, ...args];
}

async function submit(params: Record<string, unknown>): Promise<Run> {
	return broker.call("execution.submit", { workspace: "ws-a", heartbeat_interval_ms: HEARTBEAT_MS, ...params });
}

const getRun = (id: string) => broker.call<Run, { id: string }>("execution.get", { id });

async function until(id: string, what: (r: Run) => boolean, label: string, timeoutMs = 20_000): Promise<Run> {
	let last: Run | undefined;
	// A call may fail while NATS restarts: keep asking.
	await waitFor(`run ${id} ${label}`, async () => what((last = (await getRun(id).catch(() => undefined)) ?? last) ?? ({} as Run)), timeoutMs).catch((err: Error) => {
		throw new Error(`${err.message}; last seen ${last?.status} attempt ${last?.attempt}: ${last?.failure_message ?? ""}`);
	});
	return last!;
}

/** The run's transition events as stored in the EVENTS stream. */
async function transitions(id: string): Promise<RunTransitioned[]> {
	const { messages } = await readAfter(jsm, STREAMS.events.name, "evt.execution.run.transitioned", 0, 10_000);
	return messages.map((m) => m.json<RunTransitioned>()).filter((e) => e.run_id === id);
}

function runnerPid(id: string, attempt: number): number {
	return Number(readFileSync(join(dataDir, "runs", id, String(attempt), "runner.pid"), "utf8"));
}

describe("execution: runs from submit to done, with a real trainer and sidecar", () => {
	before(async () => {
		suite = await openServiceSuite("exec", { operator: true });
		({ nats, dataDir, jsm } = suite);
		env = { DATA_DIR: dataDir, NATS_AUTHORITY: nats.authorityFile!, RUN_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) };
		broker = await startExecution("exec-1");
	});

	after(async () => {
		await broker?.stop();
		await suite?.close();
	});

	it("runs a trainer to SUCCEEDED with metrics, logs and its checkpoints stored", async () => {
		const run = await submit({ command: trainer("--epochs", "3", "--steps", "3", "--step-ms", "60"), request_id: "happy-1" });
		assert.equal(run.status, "QUEUED");
		const done = await until(run.id, (r) => r.status === "SUCCEEDED", "succeeded");
		assert.equal(done.exit_code, 0);
		assert.deepEqual(
			(await transitions(run.id)).map((t) => `${t.from}>${t.to}`),
			["PENDING>QUEUED", "QUEUED>RUNNING", "RUNNING>SUCCEEDED"],
		);
		assert.ok(done.started_at && done.completed_at && done.queued_at);
		assert.ok(typeof done.metrics.loss === "number" && typeof done.metrics.accuracy === "number", JSON.stringify(done.metrics));
		assert.deepEqual(done.artifacts.map((a) => a.path).sort(), ["epoch-1.ckpt", "epoch-2.ckpt", "epoch-3.ckpt"]);
		for (const a of done.artifacts) {
			const stored = fileURLToPath(a.uri);
			assert.ok(stored.startsWith(join(dataDir, "blobs")), stored);
			assert.deepEqual(await sha256OfFile(stored), { sha256: a.sha256, bytes: a.bytes });
		}
		const logs = await broker.call<{ lines: { line: string }[] }, object>("execution.logs", { id: run.id });
		assert.ok(logs.lines.some((l) => l.line.includes("epoch 2/3")), "the trainer's output is kept as logs");
		assert.ok(logs.lines.some((l) => l.line.includes(run.id)), "the trainer saw RUN_ID");
		// The same request id returns the same run; with other parameters it is refused.
		assert.equal((await submit({ command: trainer("--epochs", "3", "--steps", "3", "--step-ms", "60"), request_id: "happy-1" })).id, run.id);
		await assert.rejects(submit({ command: trainer("--epochs", "9"), request_id: "happy-1" }), { code: 409, type: "REQUEST_ID_REUSED" });
		// A finished run cannot be cancelled: a clear 409, nothing changed.
		await assert.rejects(broker.call("execution.cancel", { id: run.id }), (err: Error & { code: number; type: string }) => {
			assert.equal(err.code, 409);
			assert.equal(err.type, "ILLEGAL_TRANSITION");
			assert.match(err.message, /cannot go from SUCCEEDED to CANCELLED \(SUCCEEDED is final\)/);
			return true;
		});
		assert.equal((await getRun(run.id)).status, "SUCCEEDED");
	});

	it("a trainer that fails ends FAILED with its exit code", async () => {
		const run = await submit({ command: trainer("--epochs", "3", "--steps", "2", "--step-ms", "20", "--fail-at-epoch", "2"), max_retries: 0 });
		const failed = await until(run.id, (r) => r.status === "FAILED", "failed");
		assert.equal(failed.exit_code, 1);
		assert.equal(failed.failure_reason, "runtime_failure");
		assert.match(failed.failure_message!, /exited with code 1/);
		assert.deepEqual(failed.artifacts.map((a) => a.path), ["epoch-1.ckpt"]);
	});

	it("a sidecar killed with SIGKILL is caught by the watchdog: retried, then cancelled with its processes gone", async () => {
		const run = await submit({ command: trainer("--epochs", "1000", "--step-ms", "50"), max_retries: 1 });
		await until(run.id, (r) => r.status === "RUNNING", "running");
		const first = runnerPid(run.id, 1);
		process.kill(-first, "SIGKILL"); // the whole group: sidecar and trainer, no chance to say goodbye
		const retried = await until(run.id, (r) => r.attempt === 2 && r.status === "RUNNING", "running again as attempt 2");
		const lost = retried.history.find((t) => t.failure_reason === "lost_heartbeat");
		assert.ok(lost, "the retry names the lost heartbeat");
		assert.equal(lost.from, "RUNNING");
		assert.equal(lost.to, "QUEUED");
		assert.equal(retried.retry_count, 1);

		const second = runnerPid(run.id, 2);
		assert.ok(isAlive(second));
		const cancelled = await broker.call<Run, object>("execution.cancel", { id: run.id, reason: "test is over" });
		assert.equal(cancelled.status, "CANCELLED");
		assert.equal(cancelled.failure_message, "test is over");
		await waitFor("attempt 2's processes to be gone", () => !isAlive(second), 15_000);
		assert.deepEqual(
			(await transitions(run.id)).map((t) => `${t.from}>${t.to}@${t.attempt}`),
			["PENDING>QUEUED@1", "QUEUED>RUNNING@1", "RUNNING>QUEUED@2", "QUEUED>RUNNING@2", "RUNNING>CANCELLED@2"],
		);
	});

	it("with no retries left, a lost run ends FAILED (lost_heartbeat) and is never marked done twice", async () => {
		const run = await submit({ command: trainer("--epochs", "1000", "--step-ms", "50"), max_retries: 0 });
		await until(run.id, (r) => r.status === "RUNNING", "running");
		process.kill(-runnerPid(run.id, 1), "SIGKILL");
		const failed = await until(run.id, (r) => r.status === "FAILED", "failed");
		assert.equal(failed.failure_reason, "lost_heartbeat");
		assert.match(failed.failure_message!, /no heartbeat for \d+ s \(limit 3 × 300 ms\)/);
		await new Promise((r) => setTimeout(r, 4 * HEARTBEAT_MS));
		const ends = (await transitions(run.id)).filter((t) => ["SUCCEEDED", "FAILED", "CANCELLED"].includes(t.to));
		assert.equal(ends.length, 1);
	});

	it("a retry of a failed run starts a new attempt that succeeds", async () => {
		const run = await submit({ command: trainer("--epochs", "1", "--steps", "1", "--step-ms", "10", "--fail-at-epoch", "1"), max_retries: 0 });
		await until(run.id, (r) => r.status === "FAILED", "failed");
		// Same command, so attempt 2 fails the same way: what matters is the new attempt and its own result.
		const retried = await broker.call<Run, object>("execution.retry", { id: run.id });
		assert.equal(retried.status, "QUEUED");
		assert.equal(retried.attempt, 2);
		const again = await until(run.id, (r) => r.attempt === 2 && r.status === "FAILED", "attempt 2 failed");
		assert.equal(again.exit_code, 1);
	});

	it("a sidecar's credential publishes only its own run's telemetry; a forged heartbeat is refused by the server", async () => {
		const mine = await nats.authority!.runCreds({ workspace: "ws-a", runId: "run-a", attempt: 1, ttlSec: 60 });
		const sidecar = await connect({
			servers: nats.url,
			authenticator: credsAuthenticator(mine.creds),
			inboxPrefix: subjects.inboxOfRun("run-a"),
		});
		const acked = new AckedPublisher(sidecar, 1_000, subjects.inboxOfRun("run-a"));
		try {
			const ok = await acked.publish(subjects.telemetry("ws-a", "run-a", "heartbeat"), "{}");
			assert.equal(ok.stream, STREAMS.telemetry.name);
			const errors: string[] = [];
			void (async () => {
				for await (const s of sidecar.status()) if (s.type === "error") errors.push(String(s.error));
			})();
			await assert.rejects(acked.publish(subjects.telemetry("ws-a", "run-b", "heartbeat"), "{}"));
			await assert.rejects(acked.publish(subjects.telemetry("ws-b", "run-a", "heartbeat"), "{}"));
			await assert.rejects(acked.publish("evt.execution.run.transitioned", "{}"));
			await waitFor("the server's permission errors", () => errors.filter((e) => /Permissions Violation for Publish/.test(e)).length >= 3);
			const stored = await jsm.streams.info(STREAMS.telemetry.name, { subjects_filter: "tlm.>" });
			const forged = Object.keys(stored.state.subjects ?? {}).filter((s) => s.split(".")[2] === "run-b" || s.split(".")[1] === "ws-b");
			assert.deepEqual(forged, [], "nothing was stored for run-b or workspace ws-b");
			// Nor can it read another run's acks: the server refuses the subscription.
			const snoop = sidecar.subscribe(`${subjects.inboxOfRun("run-b")}.>`);
			const ended = await Promise.race([snoop.closed.then((v) => (v instanceof Error ? v.message : "closed")), sleep(3_000).then(() => "still open")]);
			assert.match(String(ended), /Permissions Violation for Subscription/);
		} finally {
			acked.close();
			await sidecar.close().catch(() => undefined);
		}
		const expired = await nats.authority!.runCreds({ workspace: "ws-a", runId: "run-a", attempt: 1, ttlSec: -5 });
		await assert.rejects(
			connect({ servers: nats.url, authenticator: credsAuthenticator(expired.creds), reconnect: false }),
			/Authorization Violation|expired/i,
		);
	});

	it("lists runs newest first, filtered by workspace and status, page by page", async () => {
		type Page = { items: Run[]; total: number; next?: string };
		const list = (params: object) => broker.call<Page, object>("execution.list", params);
		const all = await list({ workspace: "ws-a", limit: 1000 });
		assert.ok(all.total >= 2, `runs so far: ${all.total}`);
		assert.equal(all.items.length, all.total);
		const created = all.items.map((r) => r.created_at);
		assert.deepEqual(created, [...created].sort().reverse(), "newest first");
		assert.equal((all.items[0] as Run & { history?: unknown }).history, undefined, "lists carry no history");
		const seen: string[] = [];
		let cursor: string | undefined;
		do {
			const page: Page = await list({ workspace: "ws-a", limit: 2, ...(cursor ? { cursor } : {}) });
			assert.ok(page.items.length <= 2);
			seen.push(...page.items.map((r) => r.id));
			cursor = page.next;
		} while (cursor);
		assert.deepEqual(seen, all.items.map((r) => r.id), "pages add up to the whole list, once each");
		assert.deepEqual((await list({ workspace: "ws-a" })).items.map((r) => r.id), all.items.slice(0, 50).map((r) => r.id), "without a limit: the first 50");
		const failed = await list({ workspace: "ws-a", status: ["FAILED"], limit: 100 });
		assert.ok(failed.total >= 1 && failed.items.every((r) => r.status === "FAILED"));
		assert.equal((await list({ workspace: "ws-elsewhere", limit: 10 })).total, 0);
		await assert.rejects(list({ status: ["DONE"] }), { code: 422, type: "INVALID_PARAMS" });
		await assert.rejects(broker.call("execution.get", { id: "run-nope" }), { code: 404, type: "NOT_FOUND" });
		await assert.rejects(submit({ command: [], workspace: "ws-a" }), /command/);
		await assert.rejects(submit({ command: ["x"], env: { SAVASSAN_NATS_CREDS: "/etc/passwd" } }), { code: 422 });
	});

	it("the execution service stopped mid-run: its local workload ends with it, and after the restart the run is retried and succeeds", async () => {
		const run = await submit({ command: trainer("--epochs", "3", "--steps", "10", "--step-ms", "100"), max_retries: 2 });
		await until(run.id, (r) => r.status === "RUNNING", "running");
		const first = runnerPid(run.id, 1);
		await broker.stop();
		assert.equal(isAlive(first), false, "local runs stop with the platform that started them");
		broker = await startExecution("exec-2");
		const done = await until(run.id, (r) => r.status === "SUCCEEDED", "succeeded after the restart", 40_000);
		assert.equal(done.attempt, 2);
		const retry = done.history.find((t) => t.to === "QUEUED" && t.attempt === 2);
		assert.ok(retry, "a retry to attempt 2");
		assert.match(retry.reason!, /automatic retry: (attempt 1 was interrupted|no heartbeat)/);
		assert.deepEqual(done.artifacts.map((a) => a.path).sort(), ["epoch-1.ckpt", "epoch-2.ckpt", "epoch-3.ckpt"]);
	});

	it("the sidecar keeps telemetry through a NATS restart: every heartbeat stored once, none missing", async () => {
		const run = await submit({ command: trainer("--epochs", "2", "--steps", "20", "--step-ms", "100"), max_retries: 0 });
		await until(run.id, (r) => r.status === "RUNNING", "running");
		await nats.restart(1_500);
		const done = await until(run.id, (r) => r.status === "SUCCEEDED", "succeeded after the restart", 30_000);
		const { messages } = await readAfter(jsm, STREAMS.telemetry.name, subjects.telemetry("ws-a", run.id, "heartbeat"), 0, 10_000);
		const seqs = messages.map((m) => m.json<Heartbeat>().seq).sort((a, b) => a - b);
		assert.ok(seqs.length >= 5, `heartbeats: ${seqs.length}`);
		assert.deepEqual(seqs, seqs.map((_s, i) => i), "heartbeat seqs 0..n, each once");
		assert.equal(done.artifacts.length, 2);
		assert.ok(existsSync(fileURLToPath(done.artifacts[0]!.uri)));
	});
});
