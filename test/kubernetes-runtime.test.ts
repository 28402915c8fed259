import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { FakeKubeApi } from "./support/fake-kube-api";
import { sleep, waitFor } from "./support/wait";
import { KubernetesRuntime } from "../services/execution/runtime/kubernetes";
import {
	CREDS_KEY,
	LABELS,
	MANAGED_SELECTOR,
	TRAINER_SCRIPT,
	buildJob,
	labelValue,
	workloadName,
} from "../services/execution/runtime/kubernetes-manifests";
import { RuntimeError, type WorkloadObservation, type WorkloadSpec } from "../services/execution/runtime/runtime";

const NS = "ml-runs";
const SIDECAR_IMAGE = "registry.example/savassan-runner:1.2.3";
const CREDS = [
	"-----BEGIN NATS USER JWT-----",
	"eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVQUJDIn0.c2lnbmF0dXJlLXNlY3JldA",
	"------END NATS USER JWT------",
	"",
	"-----BEGIN USER NKEY SEED-----",
	"SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY",
	"------END USER NKEY SEED------",
	"",
].join("\n");
const SECRET_PARTS = [CREDS, CREDS.split("\n")[1], CREDS.split("\n")[5]];
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function gpuSpec(over: Partial<WorkloadSpec> = {}): WorkloadSpec {
	return {
		runId: "run_01HZX3Example",
		attempt: 2,
		workspace: "vision-team",
		traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
		image: "registry.example/trainers/resnet:7",
		command: ["python", "train.py", "--tag", "x; rm -rf /", "$(id)"],
		env: { EPOCHS: "10", RUN_ID: "spoofed", SAVASSAN_NATS_CREDS: "/etc/shadow" },
		resources: { cpu: "8", memory: "32Gi", gpus: 2, gpuType: "NVIDIA-A100-SXM4-40GB" },
		timeoutSec: 7200,
		credentials: CREDS,
		sidecar: { natsUrl: "nats://nats.savassan:4222", heartbeatIntervalMs: 5000, storageUrl: "s3://ckpt/vision" },
		...over,
	};
}

/** A runtime talking to `api`, and every log line it wrote. */
async function runtimeFor(api: FakeKubeApi, lines: string[] = []): Promise<KubernetesRuntime> {
	const { KubeConfig } = await import("@kubernetes/client-node");
	const kubeConfig = new KubeConfig();
	kubeConfig.loadFromOptions(api.kubeConfigOptions(NS));
	const log = pino({ level: "debug" }, { write: (s: string) => void lines.push(s) });
	return KubernetesRuntime.create({
		namespace: NS,
		sidecarImage: SIDECAR_IMAGE,
		kubeConfig,
		log,
		requestTimeoutMs: 2000,
		watchRetryMs: 30,
		settleMs: 150,
	});
}

const JOBS = `/apis/batch/v1/namespaces/${NS}/jobs`;
const SECRETS = `/api/v1/namespaces/${NS}/secrets`;

async function rejection(p: Promise<unknown>): Promise<RuntimeError> {
	const err = await p.then(
		() => assert.fail("expected a rejection"),
		(e: unknown) => e,
	);
	assert.ok(err instanceof RuntimeError, `expected a RuntimeError, got ${String(err)}`);
	for (const part of SECRET_PARTS) assert.ok(!err.message.includes(part), "the credential leaked into an error");
	return err;
}

describe("kubernetes manifests", () => {
	it("names jobs deterministically, DNS-1123 and collision-free", () => {
		assert.equal(workloadName("abc-123", 1), "run-abc-123-a1");
		assert.equal(workloadName("abc-123", 1), workloadName("abc-123", 1));
		const names = [
			workloadName("a_b", 1),
			workloadName("a-b", 1),
			workloadName("A-b", 1),
			workloadName("x".repeat(200), 1),
			workloadName("x".repeat(201), 1),
			workloadName("-lead_", 3),
			// Shaped like a hashed name: hashed itself, so it cannot collide with one.
			workloadName("a-b-deadbeef", 1),
			workloadName("a-b", 12),
		];
		assert.equal(new Set(names).size, names.length, names.join(" "));
		for (const n of names) {
			assert.ok(n.length <= 63, n);
			assert.match(n, DNS1123);
		}
		assert.equal(workloadName("a-b-deadbeef", 1).length, "run-a-b-deadbeef-".length + 8 + "-a1".length);
		assert.throws(() => workloadName("bad/id", 1), RuntimeError);
		assert.throws(() => workloadName("ok", 0), RuntimeError);
	});

	it("keeps label values valid and distinct", () => {
		assert.equal(labelValue("vision-team"), "vision-team");
		for (const v of ["_x_", "-", "a".repeat(64), "a".repeat(65), "with space", "é"]) assert.match(labelValue(v), LABEL_VALUE, v);
		assert.notEqual(labelValue("a".repeat(64)), labelValue("a".repeat(65)));
		assert.ok(labelValue("a".repeat(100)).length <= 63);
	});

	it("refuses a spec it cannot run, without retry", () => {
		const opts = { sidecarImage: SIDECAR_IMAGE, ttlSecondsAfterFinished: 60 };
		for (const bad of [{ command: [] }, { timeoutSec: 0 }, { runId: "a.b" }, { resources: { gpus: 1.5 } }]) {
			let err: unknown;
			try {
				buildJob(gpuSpec(bad), opts);
			} catch (e) {
				err = e;
			}
			assert.ok(err instanceof RuntimeError && !err.retryable, JSON.stringify(bad));
		}
	});
});

describe("kubernetes runtime", () => {
	let api: FakeKubeApi;
	let rt: KubernetesRuntime;
	let logs: string[];

	beforeEach(async () => {
		api = await FakeKubeApi.start();
		logs = [];
		rt = await runtimeFor(api, logs);
	});
	afterEach(async () => {
		await rt.close();
		await api.stop();
		for (const part of SECRET_PARTS) assert.ok(!logs.join("").includes(part), "the credential leaked into a log line");
		if (process.env.SHOW_LOGS) console.log(logs.join(""));
	});

	it("creates the Secret, then a GPU Job that runs the trainer beside the native sidecar", async () => {
		const spec = gpuSpec();
		await rt.start(spec);
		const name = workloadName(spec.runId, spec.attempt);
		assert.match(name, DNS1123);
		assert.notEqual(name, `run-${spec.runId.toLowerCase().replace(/_/g, "-")}-a2`, "a lossy mapping must add a hash");

		const posts = api.requests.filter((r) => r.method === "POST");
		assert.deepEqual(
			posts.map((r) => r.path),
			[SECRETS, JOBS],
		);
		const [secret, job] = posts.map((r) => r.body);

		// Secret: the credential, labelled like the Job.
		assert.equal(secret.metadata.name, name);
		assert.equal(secret.stringData[CREDS_KEY], CREDS);
		const labels = {
			[LABELS.managedBy]: "savassan",
			[LABELS.runId]: spec.runId,
			[LABELS.attempt]: "2",
			[LABELS.workspace]: "vision-team",
			[LABELS.traceId]: spec.traceId,
		};
		assert.deepEqual(secret.metadata.labels, labels);

		// Job: name, labels (valid values, exact ones in annotations), no Kubernetes retries, TTL, deadline.
		assert.equal(job.metadata.name, name);
		assert.deepEqual(job.metadata.labels, labels);
		assert.deepEqual(job.spec.template.metadata.labels, labels);
		for (const v of Object.values(job.metadata.labels)) assert.match(v as string, LABEL_VALUE);
		assert.equal(job.metadata.annotations[LABELS.runId], spec.runId);
		assert.equal(job.spec.backoffLimit, 0);
		assert.equal(job.spec.ttlSecondsAfterFinished, 3600);
		assert.equal(job.spec.activeDeadlineSeconds, 7200);

		const pod = job.spec.template.spec;
		assert.equal(pod.restartPolicy, "Never");
		assert.equal(pod.shareProcessNamespace, true);
		assert.equal(pod.automountServiceAccountToken, false);
		assert.deepEqual(pod.nodeSelector, { "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB" });

		// Trainer: image, resources with GPUs, argv as separate arguments after a constant script.
		assert.equal(pod.containers.length, 1);
		const trainer = pod.containers[0];
		assert.equal(trainer.image, spec.image);
		const quantities = { cpu: "8", memory: "32Gi", "nvidia.com/gpu": "2" };
		assert.deepEqual(trainer.resources, { requests: quantities, limits: quantities });
		assert.deepEqual(trainer.command, ["/bin/sh", "-c", TRAINER_SCRIPT, "sh", ...spec.command]);
		assert.ok(!TRAINER_SCRIPT.includes("rm -rf"));
		const trainerEnv = Object.fromEntries(trainer.env.map((e: { name: string; value: string }) => [e.name, e.value]));
		assert.equal(trainerEnv.RUN_ID, spec.runId, "spec.env cannot shadow RUN_ID");
		assert.equal(trainerEnv.RUN_ATTEMPT, "2");
		assert.equal(trainerEnv.RUN_WORKSPACE, "vision-team");
		assert.equal(trainerEnv.TRACE_ID, spec.traceId);
		assert.equal(trainerEnv.EPOCHS, "10");
		assert.ok(trainerEnv.CHECKPOINT_DIR);
		for (const k of ["SAVASSAN_NATS_CREDS", "SAVASSAN_NATS_URL", "SAVASSAN_STORAGE_URL"]) assert.ok(!(k in trainerEnv), k);
		assert.ok(!trainer.volumeMounts.some((m: { name: string }) => m.name === "nats-creds"));

		// Runner: a restartable init container with the credential file mounted read-only.
		assert.equal(pod.initContainers.length, 1);
		const runner = pod.initContainers[0];
		assert.equal(runner.restartPolicy, "Always");
		assert.equal(runner.image, SIDECAR_IMAGE);
		assert.deepEqual(runner.command, ["savassan-runner", "--attach"]);
		const runnerEnv = Object.fromEntries(runner.env.map((e: { name: string; value: string }) => [e.name, e.value]));
		assert.equal(runnerEnv.SAVASSAN_NATS_URL, spec.sidecar.natsUrl);
		assert.deepEqual(
			[runner.securityContext?.runAsNonRoot, runner.securityContext?.allowPrivilegeEscalation, runner.securityContext?.capabilities?.drop],
			[true, false, ["ALL"]],
			"the sidecar runs locked down",
		);
		assert.equal(runnerEnv.SAVASSAN_HEARTBEAT_INTERVAL_MS, "5000");
		assert.equal(runnerEnv.SAVASSAN_STORAGE_URL, spec.sidecar.storageUrl);
		assert.equal(runnerEnv.SAVASSAN_ATTACH_DIR, trainerEnv.SAVASSAN_ATTACH_DIR);
		assert.equal(runnerEnv.CHECKPOINT_DIR, trainerEnv.CHECKPOINT_DIR);
		assert.equal(runnerEnv.RUN_ID, spec.runId);
		const credsMount = runner.volumeMounts.find((m: { name: string }) => m.name === "nats-creds");
		assert.equal(credsMount.readOnly, true);
		assert.equal(runnerEnv.SAVASSAN_NATS_CREDS, `${credsMount.mountPath}/${CREDS_KEY}`);
		assert.ok(runner.resources.requests.cpu && runner.resources.requests.memory);
		const credsVolume = pod.volumes.find((v: { name: string }) => v.name === "nats-creds");
		assert.equal(credsVolume.secret.secretName, name);
		assert.equal(credsVolume.secret.defaultMode, 0o400);
		for (const shared of ["attach", "checkpoints"]) {
			assert.deepEqual(pod.volumes.find((v: { name: string }) => v.name === shared).emptyDir, {});
		}

		// The credential is in the Secret only.
		const jobText = JSON.stringify(job);
		for (const part of SECRET_PARTS) assert.ok(!jobText.includes(part), "the credential leaked into the Job");
	});

	it("runs the trainer's argv without a shell in between, and leaves its log and exit code", () => {
		const dir = mkdtempSync(join(tmpdir(), "savassan-attach-"));
		try {
			const job = buildJob(gpuSpec({ command: ["sh", "-c", 'printf "%s|" "$@"; exit 3', "argv0", "x; rm -rf /", "$(id)", "a b"] }), {
				sidecarImage: SIDECAR_IMAGE,
				ttlSecondsAfterFinished: 60,
			});
			const [bin, ...args] = job.spec!.template.spec!.containers[0].command!;
			let status = 0;
			let out = "";
			try {
				out = execFileSync(bin, args, { env: { PATH: process.env.PATH, SAVASSAN_ATTACH_DIR: dir }, encoding: "utf8" });
			} catch (err) {
				const e = err as { status: number; stdout: string };
				status = e.status;
				out = e.stdout;
			}
			assert.equal(status, 3);
			assert.equal(out, "x; rm -rf /|$(id)|a b|");
			assert.equal(readFileSync(join(dir, "trainer.log"), "utf8"), out);
			assert.equal(readFileSync(join(dir, "exit-code"), "utf8").trim(), "3");
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("starts idempotently: AlreadyExists is success, and the Secret is owned by the Job", async () => {
		const spec = gpuSpec();
		const name = workloadName(spec.runId, spec.attempt);
		await rt.start(spec);
		await rt.start(spec);

		assert.equal(api.all(NS, "jobs").length, 1);
		assert.equal(api.all(NS, "secrets").length, 1);
		assert.equal(api.requestsMatching("POST", JOBS).length, 2, "the second create was answered 409");
		const jobUid = api.get(NS, "jobs", name).metadata.uid;
		assert.ok(jobUid);
		const owners = api.get(NS, "secrets", name).metadata.ownerReferences;
		assert.deepEqual(owners, [{ apiVersion: "batch/v1", kind: "Job", name, uid: jobUid }]);
		assert.equal(api.requestsMatching("PATCH", `${SECRETS}/${name}`).length, 2);
		assert.equal(api.requestsMatching("PATCH", `${SECRETS}/${name}`)[1].contentType, "application/json-patch+json");
	});

	it("refuses to adopt a Job of the same name that belongs to another workload", async () => {
		const spec = gpuSpec({ runId: "abc", attempt: 1 });
		api.put(NS, "jobs", "ADDED", { metadata: { name: "run-abc-a1", annotations: { [LABELS.runId]: "other", [LABELS.attempt]: "1" } } });
		const err = await rejection(rt.start(spec));
		assert.equal(err.retryable, false);
		assert.match(err.message, /belongs to another workload/);
	});

	it("maps API refusals to non-retryable errors and server trouble to retryable ones", async () => {
		const isJobCreate = (r: { method: string; path: string }) => r.method === "POST" && r.path === JOBS;

		api.fail(isJobCreate, 403, "Forbidden", 'jobs.batch is forbidden: User "system:serviceaccount:savassan:controller" cannot create resource "jobs"');
		let err = await rejection(rt.start(gpuSpec({ runId: "r403" })));
		assert.equal(err.retryable, false);
		assert.match(err.message, /create job run-r403-a2 in namespace ml-runs failed with HTTP 403 \(Forbidden: jobs\.batch is forbidden/);
		// Refused for good: its Secret is removed, as nothing would ever collect it.
		assert.equal(api.get(NS, "secrets", "run-r403-a2"), undefined);

		api.fail(isJobCreate, 422, "Invalid", 'Job.batch "run-r422-a2" is invalid: spec.template.spec.containers[0].image: Required value');
		err = await rejection(rt.start(gpuSpec({ runId: "r422" })));
		assert.equal(err.retryable, false);
		assert.match(err.message, /HTTP 422 \(Invalid: Job\.batch "run-r422-a2" is invalid/);

		api.fail(isJobCreate, 503, "ServiceUnavailable", "etcdserver: leader changed");
		err = await rejection(rt.start(gpuSpec({ runId: "r503" })));
		assert.equal(err.retryable, true);
		assert.match(err.message, /HTTP 503/);

		api.fail(isJobCreate, 429, "TooManyRequests", "slow down");
		err = await rejection(rt.start(gpuSpec({ runId: "r429" })));
		assert.equal(err.retryable, true);

		// An API that quotes the credential back: scrubbed from the error.
		api.fail((r) => r.method === "POST" && r.path === SECRETS, 422, "Invalid", `Secret is invalid: stringData: ${CREDS}`);
		err = await rejection(rt.start(gpuSpec({ runId: "rquote" })));
		assert.equal(err.retryable, false);
		assert.match(err.message, /create secret/);
	});

	it("reports an unreachable API as retryable", async () => {
		const down = await FakeKubeApi.start();
		const unreachable = await runtimeFor(down);
		await down.stop();
		const err = await rejection(unreachable.start(gpuSpec()));
		assert.equal(err.retryable, true);
		assert.match(err.message, /create secret .* failed/);
		await unreachable.close();
	});

	it("cancels with a foreground delete, and cancelling what is gone is no error", async () => {
		const spec = gpuSpec({ runId: "to-cancel", attempt: 1 });
		await rt.start(spec);
		await rt.cancel("to-cancel", 1);
		const [del] = api.requestsMatching("DELETE", `${JOBS}/run-to-cancel-a1`);
		assert.equal(del.query.propagationPolicy, "Foreground");
		assert.equal(api.get(NS, "jobs", "run-to-cancel-a1"), undefined);
		assert.equal(api.requestsMatching("DELETE", `${SECRETS}/run-to-cancel-a1`).length, 1);

		await rt.cancel("to-cancel", 1);
		await rt.cancel("never-started", 4);
		assert.equal(api.requestsMatching("DELETE", `${JOBS}/run-never-started-a4`).length, 1);

		api.fail((r) => r.method === "DELETE", 500, "InternalError", "boom");
		const err = await rejection(rt.cancel("to-cancel", 1));
		assert.equal(err.retryable, true);
	});

	it("lists the current Jobs as observations", async () => {
		await rt.start(gpuSpec({ runId: "fresh", attempt: 1 }));
		await rt.start(gpuSpec({ runId: "busy", attempt: 1 }));
		await rt.start(gpuSpec({ runId: "done", attempt: 3 }));
		setStatus(api, "run-busy-a1", { active: 1, ready: 1 });
		setStatus(api, "run-done-a3", { conditions: [{ type: "Complete", status: "True" }] });
		api.put(NS, "jobs", "ADDED", { metadata: { name: "not-ours", labels: { [LABELS.managedBy]: "savassan" } } });

		const seen = await rt.list();
		const byRun = Object.fromEntries(seen.map((o) => [o.runId, o]));
		assert.equal(seen.length, 3);
		assert.deepEqual(byRun.fresh, { runId: "fresh", attempt: 1, phase: "pending" });
		assert.deepEqual(byRun.busy, { runId: "busy", attempt: 1, phase: "running" });
		assert.deepEqual(byRun.done, { runId: "done", attempt: 3, phase: "succeeded" });
		const [req] = api.requestsMatching("GET", JOBS);
		assert.equal(req.query.labelSelector, MANAGED_SELECTOR);
	});

	describe("observe", () => {
		let seen: WorkloadObservation[];
		let stop: () => Promise<void>;
		const of = (runId: string) => seen.filter((o) => o.runId === runId).map(({ phase, reason, exitCode }) => ({ phase, reason, exitCode }));

		beforeEach(async () => {
			seen = [];
			stop = await rt.observe((o) => seen.push(o));
			await waitFor("the watches", () => api.openWatches(NS, "jobs") === 1 && api.openWatches(NS, "pods") === 1);
		});
		afterEach(async () => {
			await stop();
		});

		it("follows a Job from pending to succeeded", async () => {
			await rt.start(gpuSpec({ runId: "ok", attempt: 1 }));
			await waitFor("pending", () => of("ok").length === 1);
			const pod = podOf(api, "run-ok-a1");
			api.emit(NS, "pods", "ADDED", { ...pod, status: { phase: "Pending" } });
			api.emit(NS, "pods", "MODIFIED", { ...pod, status: { phase: "Running" } });
			setStatus(api, "run-ok-a1", { active: 1, ready: 1 }, true);
			api.emit(NS, "pods", "MODIFIED", {
				...pod,
				status: { phase: "Succeeded", containerStatuses: [{ name: "trainer", state: { terminated: { exitCode: 0 } } }] },
			});
			setStatus(api, "run-ok-a1", { succeeded: 1, conditions: [{ type: "Complete", status: "True" }] }, true);
			await waitFor("succeeded", () => of("ok").length === 3);
			await sleep(100);
			assert.deepEqual(of("ok"), [
				{ phase: "pending", reason: undefined, exitCode: undefined },
				{ phase: "running", reason: undefined, exitCode: undefined },
				{ phase: "succeeded", reason: undefined, exitCode: 0 },
			]);
			assert.deepEqual(seen.at(-1), { runId: "ok", attempt: 1, phase: "succeeded", exitCode: 0 });
		});

		it("reports a Job past its deadline as failed with DeadlineExceeded, even as its pod is deleted", async () => {
			await rt.start(gpuSpec({ runId: "slow", attempt: 1 }));
			const pod = podOf(api, "run-slow-a1");
			api.emit(NS, "pods", "ADDED", { ...pod, status: { phase: "Running" } });
			// The pod's deletion arrives before the Job's condition: the settle delay keeps it from looking like a loss.
			api.emit(NS, "pods", "DELETED", { ...pod, status: { phase: "Running" } });
			setStatus(api, "run-slow-a1", {
				conditions: [{ type: "Failed", status: "True", reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" }],
			}, true);
			await waitFor("failed", () => of("slow").some((o) => o.phase === "failed"));
			await sleep(100);
			assert.deepEqual(of("slow").at(-1), {
				phase: "failed",
				reason: "DeadlineExceeded: Job was active longer than specified deadline",
				exitCode: undefined,
			});
			assert.equal(of("slow").filter((o) => o.phase === "failed" || o.phase === "vanished").length, 1);
		});

		it("reports a trainer failure as failed, and an evicted pod or a deleted Job as vanished", async () => {
			await rt.start(gpuSpec({ runId: "crash", attempt: 1 }));
			await rt.start(gpuSpec({ runId: "evicted", attempt: 1 }));
			await rt.start(gpuSpec({ runId: "deleted", attempt: 1 }));
			// Pods of a Job not seen yet are ignored (their Job comes first in a real cluster).
			await waitFor("pending", () => ["crash", "evicted", "deleted"].every((r) => of(r).length === 1));

			const crash = podOf(api, "run-crash-a1");
			api.emit(NS, "pods", "MODIFIED", {
				...crash,
				status: { phase: "Failed", containerStatuses: [{ name: "trainer", state: { terminated: { exitCode: 1 } } }] },
			});
			setStatus(api, "run-crash-a1", { failed: 1, conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" }] }, true);

			const evicted = podOf(api, "run-evicted-a1");
			api.emit(NS, "pods", "MODIFIED", {
				...evicted,
				status: { phase: "Failed", conditions: [{ type: "DisruptionTarget", status: "True", reason: "EvictionByEvictionAPI", message: "Eviction API: evicting" }] },
			});
			setStatus(api, "run-evicted-a1", { failed: 1, conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded" }] }, true);

			api.emit(NS, "jobs", "DELETED", api.get(NS, "jobs", "run-deleted-a1"));

			await waitFor("three outcomes", () => ["crash", "evicted", "deleted"].every((r) => of(r).some((o) => o.phase !== "pending")));
			assert.deepEqual(of("crash").at(-1), { phase: "failed", reason: "BackoffLimitExceeded: Job has reached the specified backoff limit", exitCode: 1 });
			assert.deepEqual(of("evicted").at(-1), { phase: "vanished", reason: "EvictionByEvictionAPI: Eviction API: evicting", exitCode: undefined });
			assert.deepEqual(of("deleted").at(-1), { phase: "vanished", reason: "JobDeleted", exitCode: undefined });
		});

		it("resumes after the server ends the streams, re-listing so that nothing is missed", async () => {
			await rt.start(gpuSpec({ runId: "gap", attempt: 1 }));
			await rt.start(gpuSpec({ runId: "later", attempt: 1 }));
			await waitFor("pending", () => of("gap").length === 1 && of("later").length === 1);
			const lists = api.requestsMatching("GET", JOBS).filter((r) => r.query.watch !== "true").length;

			api.endWatches();
			// Changed while nobody watched: only a new list can tell.
			api.put(NS, "jobs", "DELETED", api.get(NS, "jobs", "run-gap-a1"));
			await waitFor("a new list and new watches", () =>
				api.requestsMatching("GET", JOBS).filter((r) => r.query.watch !== "true").length > lists &&
				api.openWatches(NS, "jobs") === 1 &&
				api.openWatches(NS, "pods") === 1,
			);
			await waitFor("vanished", () => of("gap").at(-1)?.phase === "vanished");

			// The new watch starts from the list's resourceVersion and delivers again.
			const watch = api.requestsMatching("GET", JOBS).filter((r) => r.query.watch === "true").at(-1)!;
			assert.ok(watch.query.resourceVersion);
			assert.equal(watch.query.labelSelector, MANAGED_SELECTOR);
			setStatus(api, "run-later-a1", { conditions: [{ type: "Complete", status: "True" }] }, true);
			await waitFor("succeeded after the resume", () => of("later").at(-1)?.phase === "succeeded");

			// A 410 Gone in the stream: list again and go on.
			const before = api.requestsMatching("GET", JOBS).length;
			api.sendRaw(NS, "jobs", { type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old resource version" } });
			await waitFor("a re-list after 410", () => api.requestsMatching("GET", JOBS).length >= before + 2 && api.openWatches(NS, "jobs") === 1);
			await rt.start(gpuSpec({ runId: "after410", attempt: 1 }));
			await waitFor("pending after the 410", () => of("after410").length === 1);
		});

		it("stops watching when stopped", async () => {
			await stop();
			await waitFor("closed watches", () => api.openWatches(NS, "jobs") === 0 && api.openWatches(NS, "pods") === 0);
			const count = api.requests.length;
			await rt.start(gpuSpec({ runId: "unseen", attempt: 1 }));
			await sleep(150);
			assert.equal(of("unseen").length, 0);
			assert.equal(api.requests.length, count + 3, "only the start's own requests");
		});
	});
});

/** Sets a Job's status in the fake; `watched`: as a MODIFIED event the watches see. */
function setStatus(api: FakeKubeApi, name: string, status: object, watched = false): void {
	const job = { ...api.get(NS, "jobs", name), status };
	if (watched) api.emit(NS, "jobs", "MODIFIED", job);
	else api.put(NS, "jobs", "MODIFIED", job);
}

/** The pod the Job controller would create for a Job of the fake. */
function podOf(api: FakeKubeApi, jobName: string): any {
	const job = api.get(NS, "jobs", jobName);
	return {
		metadata: {
			name: `${jobName}-x7k2p`,
			labels: { ...job.spec.template.metadata.labels, "batch.kubernetes.io/job-name": jobName },
			annotations: job.spec.template.metadata.annotations,
			ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: jobName, uid: job.metadata.uid, controller: true }],
		},
		spec: job.spec.template.spec,
	};
}
