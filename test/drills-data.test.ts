import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { DLQ_HEADERS } from "../events/headers";
import { readStoredMessages } from "../events/stream-reader";
import { STREAMS } from "../events/streams";
import { subjects } from "../events/subjects";
import { busOf } from "../lib/moleculer/bus.middleware";
import { credsAuthenticator } from "../lib/nats-auth";
import { defaultNatsServerBin, startEmbeddedNats } from "../lib/nats-server";
import { PROJECT_ROOT } from "../lib/paths";
import { RUN_ENV } from "../lib/run-env";
import type { DeadLetter } from "../services/deadletters/dead-letter";
import { deadLettersService } from "../services/deadletters/deadletters.service";
import type { AlertRecord } from "../services/telemetry/alerts";
import type { ProgressView } from "../services/telemetry/progress";
import { telemetryConsumers, telemetryService } from "../services/telemetry/telemetry.service";
import { startBroker } from "./support/broker";
import { Flooder, pacedRound, type PacedRoundResult } from "./support/flood";
import { startTestNats, type TestNats } from "./support/nats";
import { SidecarConnection } from "./support/sidecar";
import { sleep, waitFor } from "./support/wait";

/**
 * Data-level failure drills (issue 8) through the real services: telemetry and deadletters on an operator-mode
 * nats-server, producers logged in with per-run sidecar credentials.
 */

const MAX_DELIVERIES = 3;
const HEARTBEAT_DURABLE = telemetryConsumers.heartbeat.durable;

let nats: TestNats;
let nc: NatsConnection;
let jsm: JetStreamManager;
let broker: ServiceBroker;
const sidecars: SidecarConnection[] = [];

function startPlatform(nodeId: string): Promise<ServiceBroker> {
	return startBroker(nats.endpoint, nodeId, [telemetryService(), deadLettersService()], {
		EVENT_MAX_DELIVERIES: String(MAX_DELIVERIES),
	});
}

async function sidecar(workspace: string, runId: string): Promise<SidecarConnection> {
	const s = await SidecarConnection.open(nats.url, nats.authority!, workspace, runId);
	sidecars.push(s);
	return s;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function heartbeatsSeen(b: ServiceBroker, runId: string): Promise<number> {
	return b.call<ProgressView, object>("telemetry.progress", { run_id: runId }).then(
		(p) => p.heartbeats,
		() => 0,
	);
}

/** Dead letters of the heartbeat durable, as the deadletters service counts them. */
async function dlqCount(): Promise<number> {
	const stats = await broker.call<{ by_consumer: { stream: string; consumer: string; count: number }[] }>("deadletters.stats");
	return stats.by_consumer.find((r) => r.stream === STREAMS.telemetry.name && r.consumer === HEARTBEAT_DURABLE)?.count ?? 0;
}

/** Every dead letter the heartbeat durable left, through the deadletters service (all pages). */
async function heartbeatDeadLetters(b: ServiceBroker): Promise<DeadLetter[]> {
	const out: DeadLetter[] = [];
	for (let after_seq = 0; ; ) {
		const page = await b.call<{ items: DeadLetter[]; next_after_seq: number | null }, object>("deadletters.list", {
			stream: STREAMS.telemetry.name,
			consumer: HEARTBEAT_DURABLE,
			after_seq,
			limit: 500,
		});
		out.push(...page.items);
		if (page.next_after_seq === null) return out;
		after_seq = page.next_after_seq;
	}
}

describe("data-level failure drills", () => {
	before(async () => {
		nats = await startTestNats({ operator: true });
		nc = await connect({ servers: nats.url, authenticator: credsAuthenticator(nats.endpoint.creds!) });
		jsm = await jetstreamManager(nc);
		broker = await startPlatform("drills-1");
	});

	after(async () => {
		await Promise.all(sidecars.splice(0).map((s) => s.close()));
		await broker?.stop();
		await nc?.close();
		await nats?.stop();
	});

	it("dead-letters a poison heartbeat after max deliveries while the other runs' heartbeats and alerts all flow", async () => {
		await broker.call("telemetry.rules.create", { id: "drill-loss-high", name: "loss above 1", metric: "loss", op: ">", threshold: 1 });
		const runs = await Promise.all(["run-ok-1", "run-ok-2", "run-ok-3", "run-ok-4"].map((id) => sidecar("ws-drill", id)));
		const poisoner = await sidecar("ws-drill", "run-poison");
		const PER_RUN = 30;
		// Loss above the threshold for 5 heartbeats, below for 5: every run raises and resolves 3 alerts.
		const send = (from: number, to: number) =>
			Promise.all(
				runs.map(async (s) => {
					for (let i = from; i < to; i++) s.out.send("heartbeat", { metrics: { loss: i % 10 < 5 ? 2 : 0.5 } });
					assert.ok(await s.out.drain(10_000), `${s.runId}: heartbeats not stored`);
				}),
			);
		await send(0, PER_RUN / 2);
		// Poison: it passes the heartbeat schema (RFC 3339 allows a leap second, and so does the date-time format),
		// but JavaScript cannot represent 23:59:60 (Date.parse gives NaN), so no attempt can ever handle it. Its loss
		// breaches the rule, so a handler that went ahead would derive an alert at an invalid time.
		const poison = { run_id: "run-poison", workspace: "ws-drill", attempt: 1, seq: 0, at: "2026-06-30T23:59:60Z", metrics: { loss: 5 } };
		const poisonAck = await poisoner.raw("heartbeat", JSON.stringify(poison), "run-poison:1:heartbeat:0");
		await send(PER_RUN / 2, PER_RUN);

		await waitFor("every valid heartbeat in the telemetry view", async () => {
			const seen = await Promise.all(runs.map((s) => heartbeatsSeen(broker, s.runId)));
			return seen.every((n) => n === PER_RUN);
		}, 20_000);
		await waitFor("the poison dead-lettered", async () => (await heartbeatDeadLetters(broker)).length > 0, 20_000);
		const letters = await heartbeatDeadLetters(broker);
		assert.equal(letters.length, 1, `only the poison is dead-lettered: ${JSON.stringify(letters.map((l) => l.error))}`);
		const [letter] = letters;
		assert.equal(letter!.reason, "handler-failed");
		assert.equal(letter!.deliveries, MAX_DELIVERIES);
		assert.deepEqual(letter!.original, {
			stream: STREAMS.telemetry.name,
			subject: subjects.telemetry("ws-drill", "run-poison", "heartbeat"),
			seq: poisonAck.seq,
			msg_id: "run-poison:1:heartbeat:0",
		});
		assert.match(letter!.error, /'at' "2026-06-30T23:59:60Z" is not a time this platform can represent/);
		assert.deepEqual(letter!.payload, poison);

		// Nothing stuck behind it: every run's alerts went out, none for the poison, and the durable is drained.
		const alertsOf = async (runId: string) =>
			(await broker.call<{ alerts: AlertRecord[] }, object>("telemetry.alerts", { run_id: runId, limit: 100 })).alerts;
		// An alert is logged once published, a moment after its heartbeat changed the view.
		await waitFor("every run's alerts", async () => (await Promise.all(runs.map((s) => alertsOf(s.runId)))).every((a) => a.length >= 6), 20_000);
		for (const s of runs) {
			const alerts = await alertsOf(s.runId);
			assert.deepEqual(
				alerts.map((a) => a.state).reverse(),
				["raised", "resolved", "raised", "resolved", "raised", "resolved"],
				`${s.runId}: its alerts`,
			);
		}
		await assert.rejects(broker.call("telemetry.progress", { run_id: "run-poison" }), { code: 404 });
		await waitFor("the heartbeat durable drained", async () => {
			const info = await jsm.consumers.info(STREAMS.telemetry.name, HEARTBEAT_DURABLE);
			return info.num_pending === 0 && info.num_ack_pending === 0;
		}, 20_000);

		// The poison stays in TELEMETRY (the stream is the views' source): a restart replays past it.
		await broker.stop();
		broker = await startPlatform("drills-2");
		for (const s of runs) assert.equal(await heartbeatsSeen(broker, s.runId), PER_RUN, `${s.runId} after the restart`);
		assert.equal((await heartbeatDeadLetters(broker)).length, 1);
	});

	it("a flood of malformed heartbeats (10 per valid one) slows valid ones by at most 2×, and every one is dead-lettered with its reason", async () => {
		// 4 sidecars beating every 10 ms (400 valid heartbeats/s), and a rogue producer in its own process sending 10
		// malformed messages per valid one (4,000/s) into the same stream and durable: the latency of the valid ones,
		// from their send until the telemetry view counts them, is compared with rounds without the flood.
		const valid = await Promise.all(["run-flow-1", "run-flow-2", "run-flow-3", "run-flow-4"].map((id) => sidecar("ws-drill", id)));
		const flooder = await Flooder.start(nats.url, nats.authority!, "ws-drill", "run-rogue");
		const dlqBefore = await dlqCount();
		const alone: PacedRoundResult[] = [];
		const flooded: PacedRoundResult[] = [];
		const ratio = () => median(flooded.map((x) => x.p50Ms)) / median(alone.map((x) => x.p50Ms));
		try {
			const round = { broker, valid, ticks: 100, tickMs: 10, floodPerValid: 10 };
			// Interleaved, the order swapped every round, so drift of a noisy machine hits both sides alike. A burst of
			// load from elsewhere can tip 7 rounds; up to 7 more then decide (a consumer that is really slowed by the
			// flood stays above 2× however many rounds: the old one measured 2.4-6×).
			for (let r = 0; r < 14; r++) {
				const runAlone = async () => alone.push(await pacedRound({ ...round, round: r }));
				const runFlooded = async () => flooded.push(await pacedRound({ ...round, flooder, round: r }));
				if (r % 2) await runFlooded().then(runAlone);
				else await runAlone().then(runFlooded);
				if (r >= 6 && ratio() <= 2) break;
			}
		} finally {
			await flooder.stop();
		}
		const slowdown = ratio();
		const table = (xs: PacedRoundResult[]) => xs.map((x) => x.p50Ms.toFixed(1)).join(", ");
		const report = `p50 latency of valid heartbeats (ms) alone: ${table(alone)}; under the flood: ${table(flooded)}; slowdown ${slowdown.toFixed(2)}×`;
		process.stderr.write(`malformed flood drill: ${report}\n`);
		assert.ok(slowdown <= 2, report);

		// None lost: every malformed message is in the dead-letter stream, with the reason it was refused for.
		const sent = flooded.reduce((n, x) => n + x.flooded, 0);
		await waitFor("every malformed message dead-lettered", async () => (await dlqCount()) - dlqBefore >= sent, 30_000);
		assert.equal((await dlqCount()) - dlqBefore, sent);
		const reasons = new Map<string, number>();
		await readStoredMessages(
			jetstream(nc),
			STREAMS.deadLetters.name,
			{ filter: subjects.deadLetter(STREAMS.telemetry.name, HEARTBEAT_DURABLE) },
			(m) => {
				if (m.headers?.get(DLQ_HEADERS.subject) !== subjects.telemetry("ws-drill", "run-rogue", "heartbeat")) return;
				const key = `${m.headers.get(DLQ_HEADERS.reason)}: ${m.headers.get(DLQ_HEADERS.error).replace(/ at position \d+.*| \(line .*/, "")}`;
				reasons.set(key, (reasons.get(key) ?? 0) + 1);
			},
		);
		assert.deepEqual(Object.fromEntries(reasons), {
			"malformed: payload is not JSON: Expected ',' or '}' after property value in JSON": sent / 2,
			"schema: invalid payload (published as schema v1): 'workspace' is required; 'run_id' must be string; 'attempt' must be integer; 'seq' must be >= 0; 'at' must match format \"date-time\"; 'metrics.loss' must be number":
				sent / 2,
		});
	});

	it("JetStream out of storage: creating an alert rule answers 507 naming the cause, the service keeps serving, and works again after a purge", async () => {
		const dir = mkdtempSync(join(tmpdir(), "savassan-drill-store-"));
		const bin = defaultNatsServerBin();
		let server = await startEmbeddedNats({ bin, dir });
		let b: ServiceBroker | undefined;
		let filler: NatsConnection | undefined;
		try {
			b = await startBroker(server.url, "drills-store", [telemetryService()]);
			// The same store with a tiny limit: the streams come back (but DEADLETTER, whose 8 GiB reservation no
			// longer fits) and the platform's connection rides the restart out.
			await server.stop();
			server = await startEmbeddedNats({
				bin,
				dir,
				port: server.port,
				extraConfig: `jetstream: { store_dir: ${JSON.stringify(join(dir, "jetstream"))}, max_file_store: 256KB }`,
			});
			await waitFor("the platform reconnected", () => busOf(b!).connected);
			filler = await connect({ servers: server.url });
			const js = jetstream(filler);
			const bytes = "x".repeat(16 * 1024);
			let refusal: Error | undefined;
			for (let i = 0; i < 100 && !refusal; i++) {
				await js.publish(subjects.domain("drill", "filler", "written"), bytes).catch((err: Error) => (refusal = err));
			}
			assert.match(String(refusal), /insufficient resources/, "the filler ran the store out of space");

			const rule = { id: "drill-storage", name: "gpu memory high", metric: "gpu_mem", op: ">", threshold: 0.9 };
			await assert.rejects(b.call("telemetry.rules.create", rule), (err: { name: string; code: number; type: string; message: string }) => {
				assert.equal(err.code, 507, `${err.name}: ${err.message}`);
				assert.equal(err.type, "STORAGE_FULL");
				assert.equal(
					err.message,
					"telemetry.rules.create could not store its changes: JetStream is out of storage (insufficient resources); free space (purge or raise the storage limits) and try again",
				);
				return true;
			});
			assert.deepEqual(await b.call("telemetry.rules.list", {}), { rules: [] }, "the service still answers");
			await assert.rejects(b.call("telemetry.progress", { run_id: "nothing-yet" }), { code: 404 });

			await jetstreamManager(filler).then((jsm) => jsm.streams.purge(STREAMS.events.name));
			const created = await b.call<{ id: string }, object>("telemetry.rules.create", rule);
			assert.equal(created.id, "drill-storage");
		} finally {
			await filler?.close();
			await b?.stop();
			await server.stop();
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("blob store full: the sidecar names the failed checkpoint upload, keeps reporting, and uploads once space is freed", async (t) => {
		const blobs = mkdtempSync(join(tmpdir(), "savassan-drill-blobs-"));
		try {
			execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", blobs], { stdio: "ignore" });
		} catch {
			rmSync(blobs, { recursive: true, force: true });
			t.skip("cannot mount a 64 KiB tmpfs here (needs root with CAP_SYS_ADMIN): a full disk is not simulated");
			return;
		}
		const work = mkdtempSync(join(tmpdir(), "savassan-drill-run-"));
		const partials = () => readdirSync(blobs, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".partial"));
		try {
			// Fill the store to the last byte: ENOSPC for every write after this.
			const filler = join(blobs, "filler");
			try {
				writeFileSync(filler, Buffer.alloc(1024 * 1024));
			} catch (err) {
				assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
			}
			const runId = "run-blob";
			const credsFile = join(work, "run.creds");
			writeFileSync(credsFile, (await nats.authority!.runCreds({ workspace: "ws-drill", runId, attempt: 1, ttlSec: 600 })).creds, { mode: 0o600 });
			const runner = spawn(
				process.execPath,
				[join(PROJECT_ROOT, "dist", "bin", "runner.js"), "--", process.execPath, join(PROJECT_ROOT, "examples", "trainer.js"), "--epochs", "4", "--steps", "5", "--step-ms", "300"],
				{
					env: {
						PATH: process.env.PATH ?? "",
						[RUN_ENV.runId]: runId,
						[RUN_ENV.attempt]: "1",
						[RUN_ENV.workspace]: "ws-drill",
						[RUN_ENV.traceId]: "trace-blob",
						[RUN_ENV.checkpointDir]: join(work, "checkpoints"),
						[RUN_ENV.natsUrl]: nats.url,
						[RUN_ENV.natsCreds]: credsFile,
						[RUN_ENV.heartbeatIntervalMs]: "200",
						[RUN_ENV.storageUrl]: pathToFileURL(blobs).href,
					},
					stdio: ["ignore", "ignore", "pipe"],
				},
			);
			let stderr = "";
			runner.stderr!.on("data", (c) => (stderr += c));
			const exited = new Promise<number | null>((r) => runner.once("exit", (code) => r(code)));
			try {
				const failure = new RegExp(
					`checkpoint epoch-1\\.ckpt: cannot store blob runs/ws-drill/${runId}/1/checkpoints/epoch-1\\.ckpt in ${pathToFileURL(blobs).href}: the disk is full \\(ENOSPC\\)`,
				);
				await waitFor("the upload failure reported", () => failure.test(stderr), 15_000);
				assert.deepEqual(partials(), [], "no half-written copy left on the full disk");
				const beatsAtFailure = await heartbeatsSeen(broker, runId);
				await sleep(600);
				assert.ok((await heartbeatsSeen(broker, runId)) > beatsAtFailure, "heartbeats go on after the failure");
				assert.equal(runner.exitCode, null, "the sidecar is still running");

				rmSync(filler);
				assert.equal(await exited, 0, `the sidecar exits with the trainer's code\n${stderr}`);
			} finally {
				if (runner.exitCode === null) runner.kill("SIGKILL");
			}
			await waitFor("the run reported done", async () => (await broker.call<ProgressView, object>("telemetry.progress", { run_id: runId })).status === "done");
			const done = await broker.call<ProgressView, object>("telemetry.progress", { run_id: runId });
			assert.equal(done.result, "succeeded");
			assert.deepEqual(done.checkpoints.map((c) => c.path).sort(), ["epoch-1.ckpt", "epoch-2.ckpt", "epoch-3.ckpt", "epoch-4.ckpt"]);
			for (const c of done.checkpoints) assert.ok(existsSync(new URL(c.uri)), `${c.uri} stored`);
			assert.deepEqual(partials(), []);
		} finally {
			execFileSync("umount", [blobs]);
			rmSync(blobs, { recursive: true, force: true });
			rmSync(work, { recursive: true, force: true });
		}
	});
});
