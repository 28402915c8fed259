import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DLQ_HEADERS, HEADERS } from "../events/headers";
import { STREAMS } from "../events/streams";
import { subjects, type TelemetryKind } from "../events/subjects";
import { telemetryMsgId, type Artifact, type TelemetryBase } from "../events/telemetry";
import type { AlertRecord, AlertRule } from "../services/telemetry/alerts";
import type { ProgressView } from "../services/telemetry/progress";
import type { SeriesView } from "../services/telemetry/telemetry-state";
import { telemetryConsumers, telemetryService } from "../services/telemetry/telemetry.service";
import { startBroker } from "./support/broker";
import { startTestNats, type TestNats } from "./support/nats";
import { sleep, waitFor } from "./support/wait";

let nats: TestNats;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const brokers: ServiceBroker[] = [];

async function start(nodeId: string, env: Record<string, string> = {}): Promise<ServiceBroker> {
	const b = await startBroker(nats.url, nodeId, [telemetryService()], env);
	brokers.push(b);
	return b;
}

async function stop(b: ServiceBroker): Promise<void> {
	brokers.splice(brokers.indexOf(b), 1);
	await b.stop();
}

/** Publishes like a runner sidecar: its run's subjects, per-kind seq, Nats-Msg-Id from telemetryMsgId. */
class Sidecar {
	private readonly seq: Record<TelemetryKind, number> = { heartbeat: 0, event: 0, done: 0, log: 0 };

	constructor(
		readonly workspace: string,
		readonly runId: string,
		readonly attempt = 1,
	) {}

	async send(kind: TelemetryKind, body: object, at = new Date()): Promise<number> {
		const payload: TelemetryBase = {
			run_id: this.runId,
			workspace: this.workspace,
			attempt: this.attempt,
			seq: this.seq[kind]++,
			at: at.toISOString(),
			...body,
		};
		const ack = await js.publish(subjects.telemetry(this.workspace, this.runId, kind), JSON.stringify(payload), {
			msgID: telemetryMsgId(kind, payload),
		});
		return ack.seq;
	}

	heartbeat(metrics: Record<string, number>, extra: object = {}, at?: Date): Promise<number> {
		return this.send("heartbeat", { metrics, ...extra }, at);
	}
}

const decoder = new TextDecoder();

async function storedMessages(stream: string) {
	const { state } = await jsm.streams.info(stream);
	const out = [];
	for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
		const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
		if (m) out.push(m);
	}
	return out;
}

/** Alert events of a run in the EVENTS stream, oldest first. */
async function alertEvents(runId: string) {
	return (await storedMessages(STREAMS.events.name))
		.filter((m) => m.subject.startsWith("evt.telemetry.alert."))
		.map((m) => ({
			verb: m.subject.split(".").pop()!,
			msgId: m.header.get(HEADERS.msgId),
			payload: JSON.parse(decoder.decode(m.data)) as AlertRecord,
		}))
		.filter((e) => e.payload.run_id === runId);
}

async function unackedHeartbeats(): Promise<number> {
	return (await jsm.consumers.info(STREAMS.telemetry.name, telemetryConsumers.heartbeat.durable)).num_ack_pending;
}

async function deadLettersOf(subject: string) {
	return (await storedMessages(STREAMS.deadLetters.name)).filter((m) => m.header.get(DLQ_HEADERS.subject) === subject);
}

function progress(b: ServiceBroker, runId: string): Promise<ProgressView> {
	return b.call("telemetry.progress", { run_id: runId });
}

async function heartbeatsSeen(b: ServiceBroker, runId: string): Promise<number> {
	return progress(b, runId).then(
		(p) => p.heartbeats,
		() => 0,
	);
}

/** Makes the service's event publishing misbehave; returns the number of calls so far. */
function interceptPublish(b: ServiceBroker, behave: (call: number, publish: () => Promise<unknown>) => Promise<unknown>): () => number {
	const svc = b.getLocalService("telemetry") as unknown as { publishEvent: (...args: unknown[]) => Promise<unknown> };
	const original = svc.publishEvent;
	let calls = 0;
	svc.publishEvent = (...args: unknown[]) => behave(++calls, () => original(...args));
	return () => calls;
}

const artifact: Artifact = { uri: "s3://bucket/run-progress/ck-1", path: "ck-1", bytes: 1234, sha256: "0".repeat(64) };

describe("telemetry service on a real nats-server", () => {
	before(async () => {
		nats = await startTestNats();
		nc = await connect({ servers: nats.url });
		js = jetstream(nc);
		jsm = await jetstreamManager(nc);
		await start("n1");
	});

	after(async () => {
		await Promise.all(brokers.splice(0).map((b) => b.stop()));
		await nc?.close();
		await nats?.stop();
	});

	it("turns a sidecar's heartbeats, events and completion into the run's progress and series", async () => {
		const b = brokers[0]!;
		const sc = new Sidecar("ws-a", "run-progress");
		const t0 = Date.now();
		await sc.send("event", { type: "started", epochs: 2 }, new Date(t0));
		for (let i = 0; i < 20; i++) {
			await sc.heartbeat(
				{ loss: 2 - i * 0.05, acc: i / 20 },
				{ progress: { epoch: i < 10 ? 0 : 1, epochs: 2, fraction: (i + 1) / 40 }, resources: { cpu_percent: 50 } },
				new Date(t0 + (i + 1) * 1_000),
			);
		}
		await sc.send("event", { type: "checkpoint_saved", epoch: 1, artifact }, new Date(t0 + 20_500));
		await waitFor("20 heartbeats and the checkpoint", async () => {
			const p = await progress(b, "run-progress").catch(() => undefined);
			return p?.heartbeats === 20 && p.checkpoints.length === 1;
		});

		const p = await progress(b, "run-progress");
		assert.equal(p.status, "running");
		assert.equal(p.attempt, 1);
		assert.equal(p.workspace, "ws-a");
		assert.equal(p.fraction, 0.5);
		assert.deepEqual([p.epoch, p.epochs], [1, 2]);
		assert.equal(p.started_at, new Date(t0).toISOString());
		assert.equal(p.last_heartbeat_at, new Date(t0 + 20_000).toISOString());
		// 1/40 per second: 20 s left after the last heartbeat.
		assert.equal(p.eta, new Date(t0 + 40_000).toISOString());
		assert.deepEqual(p.resources, { cpu_percent: 50 });
		assert.deepEqual(p.checkpoints, [artifact]);

		const loss = await b.call<SeriesView, object>("telemetry.series", { run_id: "run-progress", metric: "loss", max_points: 5 });
		assert.equal(loss.series.length, 1);
		const [s] = loss.series;
		assert.equal(s!.samples, 20);
		assert.ok(s!.points.length <= 5);
		assert.equal(s!.points.reduce((n, pt) => n + pt.count, 0), 20);
		assert.equal(Math.max(...s!.points.map((pt) => pt.max)), 2);
		const all = await b.call<SeriesView, object>("telemetry.series", {
			run_id: "run-progress",
			from: new Date(t0 + 5_000).toISOString(),
			to: new Date(t0 + 9_000).toISOString(),
		});
		assert.deepEqual(
			all.series.map((x) => [x.metric, x.points.length]),
			[
				["acc", 5],
				["loss", 5],
			],
		);

		const started_at = new Date(t0).toISOString();
		const exit = { status: "succeeded", exit_code: 0, signal: null, started_at, metrics: { loss: 1 }, artifacts: [artifact] };
		await sc.send("done", exit, new Date(t0 + 21_000));
		await waitFor("done", async () => (await progress(b, "run-progress")).status === "done");
		const done = await progress(b, "run-progress");
		assert.equal(done.result, "succeeded");
		assert.equal(done.finished_at, new Date(t0 + 21_000).toISOString());
		assert.equal(done.eta, undefined);

		await assert.rejects(() => progress(b, "no-such-run"), { code: 404, type: "NOT_FOUND", message: "no telemetry for run no-such-run" });
		await assert.rejects(async () => b.call("telemetry.series", { run_id: "no-such-run" }), { code: 404 });
		const badParams = { run_id: "run-progress", max_points: 0 };
		await assert.rejects(async () => b.call("telemetry.series", badParams), { code: 422, type: "INVALID_PARAMS" });
	});

	it("a rule raises exactly one alert through a redelivery, then resolves it", async () => {
		const b = brokers[0]!;
		const params = { id: "loss-high", name: "loss too high", workspace: "ws-alert", metric: "loss", op: ">", threshold: 5, for_samples: 2 };
		const rule = await b.call<AlertRule, object>("telemetry.rules.create", params);
		assert.equal(rule.cooldown_ms, 0);
		assert.deepEqual(await b.call("telemetry.rules.create", params), rule, "creating the same rule again is a no-op");
		await assert.rejects(async () => b.call("telemetry.rules.create", { ...params, threshold: 6 }), { code: 409, type: "CONFLICT" });

		// The first publish is stored but its caller sees a failure, as when the ack is lost: the heartbeat is
		// redelivered and publishes again with the same id.
		const calls = interceptPublish(b, async (call, publish) => {
			const r = await publish();
			if (call === 1) throw new Error("acknowledgement lost");
			return r;
		});
		const sc = new Sidecar("ws-alert", "run-alert");
		const seqs = [];
		for (const loss of [1, 6, 7, 8, 9, 2]) seqs.push(await sc.heartbeat({ loss }));
		await new Sidecar("ws-other", "run-other-ws").heartbeat({ loss: 100 });
		await waitFor("raised and resolved", async () => (await alertEvents("run-alert")).length === 2);
		await sleep(300);

		const events = await alertEvents("run-alert");
		assert.deepEqual(
			events.map((e) => e.verb),
			["raised", "resolved"],
		);
		const [raised, resolved] = events;
		assert.equal(raised!.payload.value, 7, "the second sample over the threshold raises (for_samples 2)");
		assert.equal(raised!.payload.heartbeat_seq, seqs[2]);
		assert.equal(raised!.msgId, `telemetry-alert:loss-high:run-alert:${seqs[2]}:raised`);
		assert.equal(resolved!.payload.value, 2);
		assert.equal(resolved!.payload.heartbeat_seq, seqs[5]);
		assert.equal(calls(), 3, "raised published twice (de-duplicated by the stream), resolved once");
		assert.equal((await alertEvents("run-other-ws")).length, 0, "the rule is for ws-alert only");

		const listed = await b.call<{ alerts: AlertRecord[] }, object>("telemetry.alerts", { run_id: "run-alert" });
		assert.deepEqual(
			listed.alerts.map((a) => a.state),
			["resolved", "raised"],
		);
		await waitFor("every heartbeat acked", async () => (await unackedHeartbeats()) === 0);
	});

	it("ignores a payload for another run on a run's subject, without dead-lettering it", async () => {
		const b = brokers[0]!;
		const subject = subjects.telemetry("ws-m", "run-a-m", "heartbeat");
		const forged = { run_id: "run-b-m", workspace: "ws-m", attempt: 1, seq: 0, at: new Date().toISOString(), metrics: { loss: 1 } };
		await js.publish(subject, JSON.stringify(forged), { msgID: "forged-1" });
		await new Sidecar("ws-m", "run-a-m").heartbeat({ loss: 3 });
		await waitFor("run A's own heartbeat", async () => (await heartbeatsSeen(b, "run-a-m")) === 1);
		await sleep(200);
		assert.equal((await progress(b, "run-a-m")).heartbeats, 1);
		assert.deepEqual((await progress(b, "run-a-m")).metrics, { loss: 3 });
		await assert.rejects(() => progress(b, "run-b-m"), { code: 404 });
		assert.equal((await deadLettersOf(subject)).length, 0);
	});

	it("dead-letters a malformed or schema-invalid heartbeat", async () => {
		const b = brokers[0]!;
		const subject = subjects.telemetry("ws-x", "run-bad", "heartbeat");
		await js.publish(subject, "{not json", { msgID: "bad-json" });
		await js.publish(subject, JSON.stringify({ run_id: "run-bad", workspace: "ws-x", attempt: 1, seq: 1, at: "yesterday", metrics: {} }), {
			msgID: "bad-time",
		});
		await waitFor("two dead letters", async () => (await deadLettersOf(subject)).length === 2);
		const letters = await deadLettersOf(subject);
		assert.deepEqual(letters.map((m) => m.header.get(DLQ_HEADERS.reason)).sort(), ["malformed", "schema"]);
		assert.ok(letters.every((m) => m.header.get(DLQ_HEADERS.consumer) === telemetryConsumers.heartbeat.durable));
		await assert.rejects(() => progress(b, "run-bad"), { code: 404 });
	});

	it("after a restart progress, series, rules and alerts are back, and no alert is raised twice", async () => {
		let b = brokers[0]!;
		await b.call("telemetry.rules.create", { id: "gpu-hot", name: "GPU too hot", metric: "gpu_temp", op: ">", threshold: 90 });
		const sc = new Sidecar("ws-r", "run-restart");
		for (let i = 0; i < 5; i++) await sc.heartbeat({ gpu_temp: 95 }, { progress: { step: i, steps: 100 } });
		await waitFor("5 heartbeats and the alert", async () => {
			return (await heartbeatsSeen(b, "run-restart")) === 5 && (await alertEvents("run-restart")).length === 1;
		});
		const before = await progress(b, "run-restart");
		const seriesBefore = await b.call("telemetry.series", { run_id: "run-restart" });
		const finishedBefore = await progress(b, "run-progress");

		await stop(b);
		b = await start("n2");
		assert.deepEqual(await progress(b, "run-restart"), before);
		assert.deepEqual(await b.call("telemetry.series", { run_id: "run-restart" }), seriesBefore);
		assert.deepEqual(await progress(b, "run-progress"), finishedBefore);
		const rules = await b.call<{ rules: AlertRule[] }>("telemetry.rules.list");
		assert.deepEqual(
			rules.rules.map((r) => r.id),
			["loss-high", "gpu-hot"],
		);
		const history = await b.call<{ alerts: AlertRecord[] }, object>("telemetry.alerts", { run_id: "run-alert" });
		assert.equal(history.alerts.length, 2, "the alert history comes back from EVENTS");

		// Still hot: the alert is known to be raised already.
		for (let i = 5; i < 8; i++) await sc.heartbeat({ gpu_temp: 96 }, { progress: { step: i, steps: 100 } });
		await waitFor("8 heartbeats", async () => (await heartbeatsSeen(b, "run-restart")) === 8);
		await sleep(300);
		assert.deepEqual(
			(await alertEvents("run-restart")).map((e) => e.verb),
			["raised"],
		);
		await sc.heartbeat({ gpu_temp: 60 });
		await waitFor("resolved", async () => (await alertEvents("run-restart")).length === 2);
		assert.deepEqual(
			(await alertEvents("run-restart")).map((e) => e.verb),
			["raised", "resolved"],
		);
	});

	it("an alert whose publishing was interrupted by a stop goes out at the next start, once", async () => {
		let b = brokers[0]!;
		await stop(b);
		// A short ack wait: what the stopped instance had prefetched comes back quickly.
		const env = { EVENT_MAX_DELIVERIES: "100", EVENT_RETRY_BASE_MS: "50", EVENT_ACK_WAIT_MS: "2000" };
		b = await start("n3", env);
		const calls = interceptPublish(b, async () => {
			throw new Error("EVENTS unavailable");
		});
		const sc = new Sidecar("ws-i", "run-interrupted");
		await sc.heartbeat({ gpu_temp: 99 });
		await sc.heartbeat({ gpu_temp: 99 });
		await waitFor("a few failed attempts", () => calls() >= 3);
		await stop(b);
		assert.equal((await alertEvents("run-interrupted")).length, 0);

		b = await start("n4", env);
		const events = await alertEvents("run-interrupted");
		assert.deepEqual(
			events.map((e) => e.verb),
			["raised"],
			"published while starting, before the consumers were bound",
		);
		await waitFor("the heartbeat acked at last", async () => (await unackedHeartbeats()) === 0);
		await sleep(300);
		assert.equal((await alertEvents("run-interrupted")).length, 1);
		assert.equal((await progress(b, "run-interrupted")).heartbeats, 2);
	});

	it("deletes rules; an unknown rule is a 404", async () => {
		const b = brokers[0]!;
		assert.deepEqual(await b.call("telemetry.rules.delete", { id: "loss-high" }), { id: "loss-high", deleted: true });
		await assert.rejects(async () => b.call("telemetry.rules.delete", { id: "loss-high" }), { code: 404 });
		const { rules } = await b.call<{ rules: AlertRule[] }, object>("telemetry.rules.list", { workspace: "ws-alert" });
		assert.deepEqual(
			rules.map((r) => r.id),
			["gpu-hot"],
			"rules for every workspace apply to ws-alert too",
		);
	});
});
