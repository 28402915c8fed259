import type { ConsumerInfo } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { AckedPublisher } from "../events/acked-publisher";
import { RunTransitioned } from "../events/catalog";
import { STREAMS } from "../events/streams";
import { readAfter } from "../events/stream-reader";
import { subjects } from "../events/subjects";
import type { Heartbeat } from "../events/telemetry";
import { busOf } from "../lib/moleculer/bus.middleware";
import { credsAuthenticator } from "../lib/nats-auth";
import { PROJECT_ROOT } from "../lib/paths";
import { TelemetryPublisher } from "../runner/publisher";
import { LOST_AFTER_INTERVALS, RECONNECT_GRACE_MS } from "../services/execution/controller";
import type { Run } from "../services/execution/run";
import type { ProgressView } from "../services/telemetry/progress";
import type { SeriesView } from "../services/telemetry/telemetry-state";
import { telemetryConsumers } from "../services/telemetry/telemetry.service";
import { startBroker } from "./support/broker";
import { childrenOf, isAlive } from "./support/cli";
import { startTestNats, type TestNats } from "./support/nats";
import { killWorkloads, PlatformProcess, sidecarPid } from "./support/platform-process";
import { sleep, waitFor } from "./support/wait";

/**
 * Failure drills with real operating-system processes: the platform (`node dist/bin/savassan.js`) joined to a
 * real nats-server in operator mode, killed with SIGKILL and started again, or left running while the NATS server
 * restarts. The test drives it through a broker of its own on the same NATS, as any other node would.
 */

const TRAINER = join(PROJECT_ROOT, "examples", "trainer.js");
const WORKSPACE = "drills";
const HEARTBEAT_MS = 300;
/** Calls to a platform that is down must fail fast, so that polling goes on. */
const CALL = { timeout: 3_000 };
const HEARTBEATS = telemetryConsumers.heartbeat.durable;

interface Drill {
	nats: TestNats;
	dir: string;
	platform: PlatformProcess;
	/** The test's own node: calls actions, reads streams and consumers. */
	client: ServiceBroker;
}

/** Execution and telemetry in one process, runs on this machine, heartbeats every 300 ms. */
const EXECUTION = { SERVICES: "execution,telemetry", RUNTIME: "local", RUN_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) };

function joinPlatform(nats: TestNats, dir: string, env: Record<string, string>): PlatformProcess {
	return PlatformProcess.joining(nats, dir, { NODE_ID: "drill-platform", EVENT_ACK_WAIT_MS: "3000", ...env });
}

/**
 * A fresh NATS, data dir, platform process (not started yet) and client broker per drill, all gone after it.
 * What the killed process left unacknowledged comes back after EVENT_ACK_WAIT_MS: 3 s keeps the drills short.
 */
async function setUp(t: TestContext, env: Record<string, string>): Promise<Drill> {
	const nats = await startTestNats({ operator: true });
	const dir = mkdtempSync(join(tmpdir(), "savassan-drill-"));
	const platform = joinPlatform(nats, dir, env);
	let client: ServiceBroker | undefined;
	t.after(async () => {
		await client?.stop();
		await platform.dispose();
		killWorkloads(dir);
		await nats.stop();
		rmSync(dir, { recursive: true, force: true });
	});
	client = await startBroker(nats.endpoint, "drill-client", []);
	return { nats, dir, platform, client };
}

async function visible(d: Drill, ...services: string[]): Promise<void> {
	await waitFor(`${services.join(", ")} to be visible`, () => {
		const available = d.client.registry.getServiceList({ onlyAvailable: true }).map((s) => s.name);
		return services.every((s) => available.includes(s));
	}, 15_000);
}

function trainer(...args: string[]): string[] {
	return [process.execPath, TRAINER, ...args];
}

function submit(d: Drill, command: string[]): Promise<Run> {
	return d.client.call<Run, object>("execution.submit", { workspace: WORKSPACE, command, heartbeat_interval_ms: HEARTBEAT_MS, max_retries: 2 }, CALL);
}

/** Polls the run until `what` holds; calls that fail (the platform or NATS is down) are simply asked again. */
async function until(d: Drill, id: string, what: (r: Run) => boolean, label: string, timeoutMs = 30_000): Promise<Run> {
	let last: Run | undefined;
	const get = () => d.client.call<Run, object>("execution.get", { id }, CALL).catch(() => undefined);
	await waitFor(`run ${id} ${label}`, async () => what((last = (await get()) ?? last) ?? ({} as Run)), timeoutMs).catch((err: Error) => {
		throw new Error(`${err.message}; last seen ${last?.status} attempt ${last?.attempt}\n${d.platform.output()}`);
	});
	return last!;
}

function progress(d: Drill, runId: string): Promise<ProgressView | undefined> {
	return d.client.call<ProgressView, object>("telemetry.progress", { run_id: runId }, CALL).catch(() => undefined);
}

function consumerInfo(d: Drill, durable: string): Promise<ConsumerInfo> {
	return busOf(d.client).jsm.consumers.info(STREAMS.telemetry.name, durable);
}

/** `<from>><to>@<attempt>` of every transition event of the run stored in EVENTS, in stream order. */
async function storedTransitions(d: Drill, runId: string): Promise<string[]> {
	const { messages } = await readAfter(busOf(d.client).jsm, STREAMS.events.name, RunTransitioned.subject, 0, 1_000);
	return messages
		.map((m) => m.json<RunTransitioned>())
		.filter((e) => e.run_id === runId)
		.map((e) => `${e.from}>${e.to}@${e.attempt}`);
}

/** The `seq` of every heartbeat of the run's attempt stored in TELEMETRY, in stream order. */
async function storedHeartbeatSeqs(d: Drill, runId: string, attempt: number): Promise<number[]> {
	const subject = subjects.telemetry(WORKSPACE, runId, "heartbeat");
	const { messages } = await readAfter(busOf(d.client).jsm, STREAMS.telemetry.name, subject, 0, 100_000);
	return messages.map((m) => m.json<Heartbeat>()).filter((h) => h.attempt === attempt).map((h) => h.seq);
}

const upTo = (n: number) => Array.from({ length: n }, (_v, i) => i);

/** The happy path of one attempt, as EVENTS must hold it: each (run, attempt, status) once. */
const ONE_ATTEMPT = ["PENDING>QUEUED@1", "QUEUED>RUNNING@1", "RUNNING>SUCCEEDED@1"];

/** Starts a run of the example trainer and waits until it runs and telemetry has seen it beat. */
async function runningTrainer(d: Drill, ...args: string[]) {
	const run = await submit(d, trainer(...args));
	await until(d, run.id, (r) => r.status === "RUNNING", "running");
	await waitFor("telemetry to count heartbeats", async () => ((await progress(d, run.id))?.heartbeats ?? 0) >= 2, 10_000);
	const sidecar = sidecarPid(d.dir, run.id, 1);
	const trainers = childrenOf(sidecar);
	assert.equal(trainers.length, 1, "the sidecar runs the trainer");
	return { run, sidecar, trainer: trainers[0]! };
}

/** Every heartbeat of attempt 1 stored once, and the telemetry view of the run counted each of them once. */
async function assertHeartbeatsOnce(d: Drill, runId: string): Promise<{ stored: number; view: ProgressView }> {
	const seqs = await storedHeartbeatSeqs(d, runId, 1);
	assert.ok(seqs.length >= 5, `heartbeats stored: ${seqs.length}`);
	assert.deepEqual([...seqs].sort((a, b) => a - b), upTo(seqs.length), "heartbeat seqs 0..n-1, each stored once");
	let view: ProgressView | undefined;
	await waitFor("telemetry to see the run end", async () => (view = await progress(d, runId))?.status === "done", 15_000);
	assert.equal(view!.result, "succeeded");
	assert.equal(view!.attempt, 1);
	assert.equal(view!.heartbeats, seqs.length, "the view counted every stored heartbeat once");
	return { stored: seqs.length, view: view! };
}

/** The (restarted) platform process logged no error and stops in order. */
async function stopCleanly(platform: PlatformProcess): Promise<void> {
	assert.deepEqual(platform.logs().filter((l) => l.level >= 50).map((l) => l.msg), [], "no error logged");
	assert.deepEqual(await platform.stop(), { code: 0, signal: null });
}

/** A run's sidecar as the runner has it: its own credential, its outbox (seq and message id per heartbeat). */
async function sidecarOutbox(nats: TestNats, runId: string) {
	const { creds } = await nats.authority!.runCreds({ workspace: WORKSPACE, runId, attempt: 1, ttlSec: 600 });
	const inbox = subjects.inboxOfRun(runId);
	const nc = await connect({ servers: nats.url, authenticator: credsAuthenticator(creds), inboxPrefix: inbox });
	const acked = new AckedPublisher(nc, 5_000, inbox);
	const out = new TelemetryPublisher(acked, { workspace: WORKSPACE, runId, attempt: 1, traceId: `trace-${runId}` }, { maxQueued: 100_000, log: { warn: () => undefined } });
	return {
		out,
		async close() {
			acked.close();
			await nc.close();
		},
	};
}

describe("failure drills with real processes", () => {
	it("a platform process SIGKILLed mid-run: restarted, it adopts the still-running workload, which succeeds as attempt 1", async (t) => {
		const d = await setUp(t, EXECUTION);
		await d.platform.start();
		await visible(d, "execution", "telemetry");
		// Long enough to outlast the restarted watchdog's grace: it must then take the workload's heartbeats for its own.
		const { run, sidecar, trainer: trainerPid } = await runningTrainer(d, "--epochs", "4", "--steps", "25", "--step-ms", "100");

		assert.deepEqual(await d.platform.kill(), { code: null, signal: "SIGKILL" });
		const atKill = await consumerInfo(d, HEARTBEATS);
		assert.ok(isAlive(sidecar) && isAlive(trainerPid), "the workload lives on in its own process groups");
		await sleep(2 * HEARTBEAT_MS); // heartbeats pile up in the stream with nobody consuming them

		await d.platform.start();
		const watchdogJudges = Date.now() + RECONNECT_GRACE_MS + LOST_AFTER_INTERVALS * HEARTBEAT_MS;
		const done = await until(d, run.id, (r) => r.status === "SUCCEEDED", "succeeded after the restart", 40_000);
		assert.ok(Date.parse(done.completed_at!) > watchdogJudges, "the run outlasted the restarted watchdog's grace");
		// The restarted controller does not launch a RUNNING attempt again: the sidecar's done ends it, no retry.
		assert.equal(done.attempt, 1);
		assert.equal(done.retry_count, 0);
		assert.deepEqual(done.history.map((h) => `${h.from}>${h.to}@${h.attempt}`), ONE_ATTEMPT);
		assert.equal(existsSync(join(d.dir, "runs", run.id, "2")), false, "no second workload");
		const said = d.platform.logs().map((l) => l.msg);
		assert.deepEqual(said.filter((m) => /runner started/.test(m)), [], "the restarted process started no runner");
		assert.ok(said.includes(`run ${run.id} attempt 1: runner (pid ${sidecar}) taken over from a platform process that is gone`));
		assert.deepEqual(await storedTransitions(d, run.id), ONE_ATTEMPT, "each transition event stored once");

		const { stored, view } = await assertHeartbeatsOnce(d, run.id);
		assert.equal(view.epochs, 4, "the whole progress, from before and after the kill");
		assert.equal(view.checkpoints.length, 4);
		// The durable resumed where the killed process left it: the same consumer, and no heartbeat delivered again
		// but those the killed process held unacknowledged.
		let end: ConsumerInfo | undefined;
		await waitFor("the heartbeat durable to be drained", async () => (end = await consumerInfo(d, HEARTBEATS)).num_pending + end.num_ack_pending === 0);
		assert.equal(end!.created, atKill.created, "the durable was not recreated");
		const redelivered = end!.delivered.consumer_seq - stored;
		assert.ok(redelivered >= 0 && redelivered <= atKill.num_ack_pending, `${redelivered} redelivered, ${atKill.num_ack_pending} unacked at the kill`);
		t.diagnostic(`${stored} heartbeats, ${atKill.num_ack_pending} unacked at the kill, ${redelivered} redelivered`);

		await waitFor("the sidecar and the trainer to exit", () => !isAlive(sidecar) && !isAlive(trainerPid), 10_000);
		await stopCleanly(d.platform);
	});

	it("a workload is taken over only from a platform process that is gone, and then stops with its new owner", async (t) => {
		const d = await setUp(t, EXECUTION);
		await d.platform.start();
		await visible(d, "execution", "telemetry");
		const { sidecar, trainer: trainerPid } = await runningTrainer(d, "--epochs", "1000", "--step-ms", "100");
		const workload = () => [sidecar, trainerPid].filter(isAlive);

		const second = joinPlatform(d.nats, d.dir, { ...EXECUTION, NODE_ID: "drill-platform-2" });
		t.after(() => second.dispose());
		await second.start();
		await stopCleanly(second);
		assert.deepEqual(workload(), [sidecar, trainerPid], "another instance on the same DATA_DIR leaves a live process's workload alone");

		await d.platform.kill();
		await d.platform.start();
		await stopCleanly(d.platform);
		assert.deepEqual(workload(), [], "the restarted process stopped the workload it took over");
	});

	it("a telemetry process SIGKILLed during a heartbeat flood: after the restart every heartbeat counts exactly once", async (t) => {
		const d = await setUp(t, { SERVICES: "telemetry" });
		await d.platform.start();
		await visible(d, "telemetry");
		const RUNS = 4;
		const PER_RUN = 2_000;
		const total = RUNS * PER_RUN;
		const runIds = upTo(RUNS).map((i) => `run-flood-${i}`);
		const sidecars = await Promise.all(runIds.map((id) => sidecarOutbox(d.nats, id)));
		t.after(() => Promise.all(sidecars.map((s) => s.close())));

		// At most 4,000/s, so that it lasts seconds and the kill lands while heartbeats still arrive (a thousand
		// runs beating every 300 ms); each sidecar's outbox numbers its own.
		const started = Date.now();
		const flood = (async () => {
			for (let i = 0; i < PER_RUN; i++) {
				for (const s of sidecars) s.out.send("heartbeat", { progress: { step: i, steps: PER_RUN }, metrics: { loss: 1 / (i + 1) } });
				if (i % 10 === 9) await sleep(10);
			}
			for (const s of sidecars) assert.ok(await s.out.drain(30_000), "every heartbeat stored");
			return Date.now() - started;
		})();
		await waitFor("the consumer to be a tenth through the flood", async () => (await consumerInfo(d, HEARTBEATS)).ack_floor.stream_seq >= total / 10, 30_000);
		const killedAfter = Date.now() - started;
		// Hung for a moment before the kill, so that it surely dies holding heartbeats it never acknowledged.
		d.platform.hang();
		await sleep(300);
		await d.platform.kill();
		const atKill = await consumerInfo(d, HEARTBEATS);
		const storedAtKill = (await busOf(d.client).jsm.streams.info(STREAMS.telemetry.name)).state.messages;
		assert.ok(storedAtKill < total, `the flood was still under way at the kill (${storedAtKill} of ${total} stored)`);
		assert.ok(atKill.num_ack_pending > 0, "the killed process held heartbeats it had not acknowledged");

		await d.platform.start();
		const floodMs = await flood;
		let end: ConsumerInfo | undefined;
		await waitFor("the heartbeat durable to be drained", async () => (end = await consumerInfo(d, HEARTBEATS)).num_pending + end.num_ack_pending === 0, 30_000);
		// Every delivery beyond one per heartbeat is a redelivery, and only what was unacknowledged comes again.
		const redelivered = end!.delivered.consumer_seq - total;
		assert.ok(redelivered > 0, "the restarted process got the unacknowledged heartbeats again");
		assert.ok(redelivered <= atKill.num_ack_pending, `${redelivered} redelivered, ${atKill.num_ack_pending} unacked at the kill`);
		assert.equal(end!.created, atKill.created, "the durable was not recreated");
		t.diagnostic(`flood of ${total} heartbeats over ${floodMs} ms, killed after ${killedAfter} ms with ${storedAtKill} stored, ack floor ${atKill.ack_floor.stream_seq}, ${atKill.num_ack_pending} unacked, ${redelivered} redelivered`);

		for (const id of runIds) {
			const view = await d.client.call<ProgressView, object>("telemetry.progress", { run_id: id }, CALL);
			assert.equal(view.heartbeats, PER_RUN, `${id}: each heartbeat counted once, redelivered or not`);
			assert.equal(view.step, PER_RUN - 1, `${id}: the last heartbeat applied last`);
			const series = await d.client.call<SeriesView, object>("telemetry.series", { run_id: id, metric: "loss" }, CALL);
			assert.equal(series.series[0]!.samples, PER_RUN, `${id}: one loss sample per heartbeat`);
		}
		await stopCleanly(d.platform);
	});

	it("NATS restarted under a platform process mid-run: the process and the sidecar reconnect by themselves, nothing is lost", async (t) => {
		const d = await setUp(t, EXECUTION);
		await d.platform.start();
		await visible(d, "execution", "telemetry");
		const { run, sidecar } = await runningTrainer(d, "--epochs", "3", "--steps", "10", "--step-ms", "100");

		await d.nats.restart(1_500);
		const done = await until(d, run.id, (r) => r.status === "SUCCEEDED", "succeeded after the NATS restart", 40_000);
		assert.ok(d.platform.running, "the platform process did not exit");
		assert.deepEqual(done.history.map((h) => `${h.from}>${h.to}@${h.attempt}`), ONE_ATTEMPT, "no retry: the run was never taken for lost");
		assert.deepEqual(await storedTransitions(d, run.id), ONE_ATTEMPT, "each transition event stored once");
		await assertHeartbeatsOnce(d, run.id);

		const said = d.platform.logs().map((l) => `${l.level} ${l.msg}`);
		const server = new URL(d.nats.url).host;
		const lost = said.indexOf(`40 bus: disconnected from ${server}`);
		const back = said.indexOf(`30 bus: reconnected to ${server}`);
		assert.ok(lost >= 0 && back > lost, `the platform logs the disconnect, then the reconnect:\n${said.join("\n")}`);
		const runnerLog = readFileSync(join(d.dir, "runs", run.id, "1", "runner.log"), "utf8");
		assert.match(runnerLog, /savassan-runner: nats: disconnected from [^\n]+\n(?:.*\n)*?.*savassan-runner: nats: reconnected to /, "the sidecar lived through the outage");
		await waitFor("the sidecar to exit", () => !isAlive(sidecar), 10_000);
		await stopCleanly(d.platform);
	});
});
