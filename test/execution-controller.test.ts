import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { ensureStreams } from "../events/streams";
import { credsAuthenticator } from "../lib/nats-auth";
import { ExecutionController } from "../services/execution/controller";
import type { Run, Transition } from "../services/execution/run";
import { RunStore } from "../services/execution/run-store";
import { RuntimeError, type RuntimePort, type WorkloadObservation, type WorkloadSpec } from "../services/execution/runtime/runtime";
import { startTestNats, type TestNats } from "./support/nats";

/**
 * The controller's reactions to what a runtime reports (the Kubernetes watch cannot run here: its adapter is tested
 * at the request level in kubernetes-runtime.test). The runtime below records calls and lets the test speak for the
 * cluster; the run store and everything else are real.
 */
class ScriptedRuntime implements RuntimePort {
	readonly kind = "kubernetes";
	started: WorkloadSpec[] = [];
	cancelled: string[] = [];
	refuse: RuntimeError | undefined;

	async start(spec: WorkloadSpec): Promise<void> {
		if (this.refuse) throw this.refuse;
		this.started.push(spec);
	}
	async cancel(runId: string, attempt: number): Promise<void> {
		this.cancelled.push(`${runId}:${attempt}`);
	}
	async observe(): Promise<() => Promise<void>> {
		return async () => undefined;
	}
	async list(): Promise<WorkloadObservation[]> {
		return [];
	}
	async close(): Promise<void> {}
}

let nats: TestNats;
let nc: NatsConnection;
let jsm: JetStreamManager;
let store: RunStore;
let runtime: ScriptedRuntime;
let controller: ExecutionController;
let published: Transition[];

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe("execution controller: reactions to the runtime", () => {
	before(async () => {
		nats = await startTestNats({ operator: true });
		nc = await connect({ servers: nats.url, authenticator: credsAuthenticator(nats.endpoint.creds!) });
		jsm = await jetstreamManager(nc);
		await ensureStreams(jsm, { replicas: 1 });
		store = await RunStore.open(jetstream(nc), 1);
	});

	after(async () => {
		store?.close();
		await nc?.close();
		await nats?.stop();
	});

	beforeEach(() => {
		runtime = new ScriptedRuntime();
		published = [];
		controller = new ExecutionController({
			store,
			runtime,
			publish: async (_run: Run, t: Transition) => void published.push(t),
			credentials: async (run) => (await nats.authority!.runCreds({ workspace: run.workspace, runId: run.id, attempt: run.attempt, ttlSec: 60 })).creds,
			busUpSince: () => 0,
			lastHeartbeat: async () => undefined,
			sidecar: { natsUrl: "nats://cluster:4222", storageUrl: "s3://bucket" },
			defaults: { image: "trainer:1", maxRetries: 1, timeoutSec: 3600, heartbeatIntervalMs: 5000 },
			startTimeoutMs: 60_000,
			log: quiet,
		});
	});

	it("a vanished pod is a retryable failure: the old attempt is deleted and a new one started; a failed Job fails the run", async () => {
		const run = await controller.submit({ workspace: "ws", command: ["python", "train.py"], resources: { gpus: 2, gpu_type: "A100" } }, "trace-k8s");
		assert.equal(runtime.started.length, 1);
		const spec = runtime.started[0]!;
		assert.equal(spec.attempt, 1);
		assert.deepEqual(spec.resources, { cpu: undefined, memory: undefined, gpus: 2, gpuType: "A100" });
		assert.match(spec.credentials, /BEGIN NATS USER JWT/);
		assert.equal(spec.sidecar.natsUrl, "nats://cluster:4222");
		await controller.onRunnerEvent({ run_id: run.id, workspace: "ws", attempt: 1, seq: 0, at: new Date().toISOString(), type: "started" });
		assert.equal((await controller.get(run.id)).status, "RUNNING");

		await controller.onObservation({ runId: run.id, attempt: 1, phase: "vanished", reason: "pod evicted" });
		const retried = await controller.get(run.id);
		assert.equal(retried.status, "QUEUED");
		assert.equal(retried.attempt, 2);
		assert.deepEqual(runtime.cancelled, [`${run.id}:1`]);
		assert.deepEqual(runtime.started.map((s) => s.attempt), [1, 2]);
		assert.match(retried.history.at(-1)!.reason!, /automatic retry: workload of attempt 1 vanished: pod evicted/);

		// A late report about attempt 1 changes nothing now.
		await controller.onObservation({ runId: run.id, attempt: 1, phase: "failed", reason: "BackoffLimitExceeded" });
		assert.equal((await controller.get(run.id)).status, "QUEUED");

		await controller.onObservation({ runId: run.id, attempt: 2, phase: "failed", reason: "DeadlineExceeded: Job was active longer than specified deadline" });
		const failed = await controller.get(run.id);
		assert.equal(failed.status, "FAILED");
		assert.equal(failed.failure_reason, "runtime_failure");
		assert.match(failed.failure_message!, /attempt 2 failed: DeadlineExceeded/);
		assert.deepEqual(published.map((t) => `${t.from}>${t.to}@${t.attempt}`), [
			"PENDING>QUEUED@1",
			"QUEUED>RUNNING@1",
			"RUNNING>QUEUED@2",
			"QUEUED>FAILED@2",
		]);
		assert.ok((await controller.get(run.id)).history.every((t) => t.published), "the outbox is empty");
	});

	it("a runtime that refuses for good fails the run at once; one that is unavailable leaves it QUEUED for the next reconcile", async () => {
		runtime.refuse = new RuntimeError("kubernetes: create job refused with HTTP 403 (Forbidden)", false);
		const refused = await controller.submit({ workspace: "ws", command: ["train"] }, "trace-403");
		assert.equal(refused.status, "FAILED");
		assert.match(refused.failure_message!, /cannot start: kubernetes: create job refused with HTTP 403/);

		runtime.refuse = new RuntimeError("kubernetes: HTTP 503", true);
		const waiting = await controller.submit({ workspace: "ws", command: ["train"] }, "trace-503");
		assert.equal(waiting.status, "QUEUED");
		runtime.refuse = undefined;
		await controller.reconcile();
		assert.ok(runtime.started.some((s) => s.runId === waiting.id && s.attempt === 1), "started once the runtime is back");
	});

	it("a run without a credential authority cannot start, and says why", async () => {
		const noAuthority = new ExecutionController({
			store,
			runtime,
			publish: async () => undefined,
			credentials: async () => {
				throw new Error("run credentials are not configured (set NATS_AUTHORITY)");
			},
			busUpSince: () => 0,
			lastHeartbeat: async () => undefined,
			sidecar: { natsUrl: "nats://x:4222", storageUrl: "file:///tmp" },
			defaults: { image: "i", maxRetries: 0, timeoutSec: 60, heartbeatIntervalMs: 1000 },
			startTimeoutMs: 60_000,
			log: quiet,
		});
		const run = await noAuthority.submit({ workspace: "ws", command: ["train"] }, "trace-x");
		assert.equal(run.status, "FAILED");
		assert.match(run.failure_message!, /run credentials are not configured/);
		assert.equal(runtime.started.length, 0);
	});
});
