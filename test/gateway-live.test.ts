import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ensureStreams, STREAMS } from "../events/streams";
import { subjects } from "../events/subjects";
import { busOf } from "../lib/moleculer/bus.middleware";
import type { Run } from "../services/execution/run";
import { CLOSE_SLOW_CONSUMER, type Live } from "../services/gateway/live/live";
import type { Pump } from "../services/gateway/live/pump";
import { resume } from "../services/gateway/live/replay";
import { startEdgePlatform, type EdgePlatform } from "./support/edge-platform";
import { sleep, waitFor } from "./support/wait";
import { LiveClient, UpgradeRefused, type LiveFrame } from "./support/ws-client";

const MAX_BUFFERED = 256 * 1024;

describe("live WebSocket /v1/live", () => {
	let p: EdgePlatform;
	let userToken: string;
	let runA: Run;
	let runB: Run;
	let heartbeatSeq = 0;
	const clients: LiveClient[] = [];

	const connect = async (token = userToken) => {
		const c = await LiveClient.withToken(p.url, token);
		clients.push(c);
		return c;
	};
	/** A heartbeat (or, with `lines`, a log batch) of run A straight into TELEMETRY, as its sidecar would; returns its sequence. */
	const publishA = async (lines?: string[]) => {
		const base = { run_id: runA.id, workspace: runA.workspace, attempt: 1, seq: heartbeatSeq++, at: new Date().toISOString() };
		const [kind, payload] = lines ? (["log", { ...base, stream: "stdout", lines }] as const) : (["heartbeat", { ...base, metrics: { loss: 1 / heartbeatSeq } }] as const);
		const ack = await busOf(p.broker).js.publish(subjects.telemetry(runA.workspace, runA.id, kind), JSON.stringify(payload));
		return ack.seq;
	};
	const submit = async (workspace: string) => {
		const run = await p.broker.call<Run, object>("execution.submit", { workspace, command: [process.execPath, "-e", "0"] });
		await waitFor(`run ${run.id} to finish`, async () => (await p.broker.call<Run, object>("execution.get", { id: run.id })).status === "SUCCEEDED", 20_000);
		return run;
	};
	const events = async (c: LiveClient, n: number, topic: string) => {
		const got: LiveFrame[] = [];
		while (got.length < n) got.push(await c.next((f) => f.topic === topic && f.type === "event"));
		return got;
	};

	before(async () => {
		p = await startEdgePlatform("live", { live: { maxBufferedBytes: MAX_BUFFERED, idleTimeoutSec: 30 } });
		await p.addUser("ana", "viewer", ["ws-a"]);
		userToken = (await p.login("ana")).access_token;
		[runA, runB] = await Promise.all([submit("ws-a"), submit("ws-b")]);
	});
	after(async () => {
		await Promise.all(clients.map((c) => c.kill()));
		await p?.close();
	});

	it("refuses the upgrade with 401 without a credential or with a bad one, and accepts a token in the query", async () => {
		await assert.rejects(LiveClient.connect(p.url), (err: UpgradeRefused) => err.status === 401 && err.body.code === "UNAUTHENTICATED");
		await assert.rejects(LiveClient.withToken(p.url, "not-a-token"), (err: UpgradeRefused) => err.status === 401 && typeof err.body.trace_id === "string");
		await assert.rejects(LiveClient.connect(p.url, { query: { api_key: "sk_wrong" } }), (err: UpgradeRefused) => err.status === 401);
		const c = await LiveClient.connect(p.url, { query: { access_token: userToken } });
		clients.push(c);
		assert.equal((await c.subscribe(`run:${runA.id}`)).type, "subscribed");
	});

	it("streams a run's telemetry live, with its stream sequence as offset", async () => {
		const c = await connect();
		const sub = await c.subscribe(`run:${runA.id}`);
		assert.ok(sub.epoch && typeof sub.offset === "number");
		const seq = await publishA();
		const ev = await c.next((f) => f.type === "event");
		assert.deepEqual([ev.topic, ev.offset, ev.epoch, ev.event, ev.data.run_id], [`run:${runA.id}`, seq, sub.epoch, "heartbeat", runA.id]);
		assert.ok(ev.offset! > sub.offset!);
	});

	it("streams the workspace's run transitions, and keeps tenants apart (403 for another workspace's run and runs)", async () => {
		const c = await connect();
		await c.subscribe("runs:ws-a");
		const run = await p.broker.call<Run, object>("execution.submit", { workspace: "ws-a", command: [process.execPath, "-e", "0"] });
		const seen = await c.next((f) => f.type === "event" && f.data.run_id === run.id && f.data.to === "SUCCEEDED", 20_000);
		assert.equal(seen.event, "run.transitioned");
		await assert.rejects(c.subscribe(`run:${runB.id}`), (err: { frame: LiveFrame }) => err.frame.status === 403 && err.frame.code === "FORBIDDEN");
		await assert.rejects(c.subscribe("runs:ws-b"), (err: { frame: LiveFrame }) => err.frame.status === 403);
		await assert.rejects(c.subscribe("run:no-such-run"), (err: { frame: LiveFrame }) => err.frame.status === 404);
		await assert.rejects(c.subscribe("runs:bad.ws"), (err: { frame: LiveFrame }) => err.frame.status === 400);
		// Nothing of workspace B leaked onto this socket.
		assert.ok(c.drain().every((f) => f.type !== "event" || f.data.workspace === "ws-a"));
	});

	it("streams the workspace's deployments (promotions and endpoints), and nothing of another workspace", async () => {
		const c = await connect();
		await c.subscribe("deployments:ws-a");
		const register = async (ws: string) => {
			const call = (action: string, params: object) => p.broker.call(`catalog.${action}`, { workspace: ws, owner: "ana", ...params });
			await call("models.register", { id: `m-${ws}`, name: "Churn" });
			await call("models.versions.register", { id: `mv-${ws}`, model_id: `m-${ws}`, version: 1 });
			await p.broker.call("catalog.models.promote", { model_id: `m-${ws}`, alias: "prod", version_id: `mv-${ws}`, actor: "ana" });
			await call("endpoints.register", { id: `ep-${ws}`, name: "churn-api", model_version_id: `mv-${ws}`, url: "https://churn.example/predict" });
		};
		await register("ws-b");
		await register("ws-a");
		// The first events on the socket are ws-a's promotion and endpoint: not ws-b's (published before), nor the
		// models and versions registered on the way.
		const [promoted, endpoint] = await events(c, 2, "deployments:ws-a");
		assert.deepEqual([promoted!.event, promoted!.data.model_id, promoted!.data.workspace, promoted!.data.to], ["alias.changed", "m-ws-a", "ws-a", "mv-ws-a"]);
		assert.deepEqual([endpoint!.event, endpoint!.data.id, endpoint!.data.kind], ["entity.registered", "ep-ws-a", "endpoint"]);
		await new Promise((r) => setTimeout(r, 200));
		assert.deepEqual(c.drain().filter((f) => f.type === "event"), []);
	});

	it("gives the audit live to platform admins only", async () => {
		const viewer = await connect();
		await assert.rejects(viewer.subscribe("audit"), (err: { frame: LiveFrame }) => err.frame.status === 403);
		const admin = await connect(p.admin.access_token);
		await admin.subscribe("audit");
		await viewer.subscribe("alerts:ws-a"); // a decision: audited
		const record = await admin.next((f) => f.type === "event" && f.data.action === "live.subscribe" && f.data.resource === "Topic:alerts:ws-a");
		assert.deepEqual([record.event, record.data.actor, record.data.result], ["authz.decision", "ana", "allow"]);
	});

	it("replays exactly what a reconnecting client missed, in order, then continues live without gap or duplicate", async () => {
		const topic = `run:${runA.id}`;
		const first = await connect();
		await first.subscribe(topic);
		await publishA();
		const last = await first.next((f) => f.type === "event");
		await first.kill();
		const missed: number[] = [];
		for (let i = 0; i < 100; i++) missed.push(await publishA());
		const again = await connect();
		again.send({ op: "subscribe", topic, offset: last.offset, epoch: last.epoch });
		// Published while the resume runs: each must arrive once, replayed or live.
		const during: number[] = [];
		for (let i = 0; i < 20; i++) during.push(await publishA());
		const got = await events(again, 120, topic);
		assert.deepEqual(got.map((f) => f.offset), [...missed, ...during]);
		const live = await publishA();
		assert.equal((await again.next((f) => f.type === "event")).offset, live);
		assert.equal(again.drain().filter((f) => f.type === "event").length, 0);
	});

	it("says plainly when a resume crosses another stream incarnation", async () => {
		const c = await connect();
		c.send({ op: "subscribe", topic: `run:${runA.id}`, offset: 1, epoch: "2001-01-01T00:00:00Z" });
		const gap = await c.next((f) => f.type === "gap");
		assert.equal(gap.reason, "epoch_changed");
		assert.ok(gap.message!.length > 20);
		const seq = await publishA();
		assert.equal((await c.next((f) => f.type === "event")).offset, seq, "live from now, nothing replayed");
	});

	it("resumes up to the feed's last handled offset only, keeps going while it moves, and bounds the replay", async () => {
		const workspace = "ws-a";
		const run = "replay-probe";
		const js = busOf(p.broker).js;
		const seqs: number[] = [];
		for (let i = 0; i < 150; i++) seqs.push((await js.publish(subjects.telemetry(workspace, run, "heartbeat"), JSON.stringify({ i }))).seq);
		const source = { topic: `run:${run}`, stream: STREAMS.telemetry.name, filter: subjects.telemetryOfRun(workspace, run), kindOf: () => "heartbeat", resource: { type: "Topic", id: run, workspace } };
		const replay = async (last: number, maxReplay: number, onSend: (pump: { last: number }) => void = () => undefined) => {
			const pump = { source, epoch: "e1", last };
			const frames: LiveFrame[] = [];
			let joinedAfter = -1;
			await resume(busOf(p.broker).jsm, pump as unknown as Pump, seqs[49]!, "e1", maxReplay, {
				send: (frame) => (frames.push(JSON.parse(frame)), onSend(pump), true),
				join: () => (joinedAfter = frames.length),
				wanted: () => true,
			});
			return { frames, joinedAfter };
		};
		// The feed has handled up to seqs[99]: what lies beyond is its to publish, never the replay's.
		const upTo100 = await replay(seqs[99]!, 10_000);
		assert.deepEqual(upTo100.frames.map((f) => f.offset), seqs.slice(50, 100));
		assert.equal(upTo100.joinedAfter, 50);
		// The feed moves on during the replay: the replay follows it to the end.
		const moving = await replay(seqs[99]!, 10_000, (pump) => (pump.last = seqs[Math.min(149, seqs.indexOf(pump.last) + 2)]!));
		assert.deepEqual(moving.frames.map((f) => f.offset), seqs.slice(50));
		// The feed's last handled message is another run's (same stream, not this topic): joins with nothing more to send.
		const other = (await js.publish(subjects.telemetry(workspace, "another-run", "heartbeat"), JSON.stringify({}))).seq;
		const beyond = await Promise.race([replay(other, 10_000), sleep(5_000).then(() => assert.fail("the resume never joined"))]);
		assert.deepEqual([beyond.frames.length, beyond.joinedAfter], [100, 100]);
		// Too many missed: a gap, then live.
		const bounded = await replay(seqs[149]!, 10);
		assert.deepEqual(bounded.frames.slice(0, 10).map((f) => f.offset), seqs.slice(50, 60));
		assert.deepEqual([bounded.frames[10]!.type, bounded.frames[10]!.reason, bounded.joinedAfter], ["gap", "history_gone", 11]);
	});

	it("cuts off a client that stops reading with 4008 while another on the same topic gets every message", async () => {
		const topic = `run:${runA.id}`;
		const normal = await connect();
		const slow = await connect();
		await normal.subscribe(topic);
		await slow.subscribe(topic);
		(slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
		const line = "x".repeat(16_000);
		const sent: number[] = [];
		for (let i = 0; i < 400; i++) sent.push(await publishA([line, line, line, line]));
		const got = await events(normal, sent.length, topic);
		assert.deepEqual(got.map((f) => f.offset), sent);
		(slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
		const closed = await slow.closed;
		assert.equal(closed.code, CLOSE_SLOW_CONSUMER);
		assert.match(closed.reason, /^slow consumer/);
	});

	it("answers malformed messages with 400 errors and keeps the socket and other clients going", async () => {
		const c = await connect();
		const other = await connect();
		await other.subscribe(`run:${runA.id}`);
		c.send("not json");
		c.send({ op: "publish", topic: "x" });
		c.send({ op: "subscribe", topic: "nope:1", id: "r1" });
		c.send({ op: "subscribe", topic: `run:${runA.id}`, offset: -3 });
		const errors = [await c.next(), await c.next(), await c.next(), await c.next()];
		assert.deepEqual(errors.map((f) => [f.type, f.status]), Array(4).fill(["error", 400]));
		assert.equal(errors[2]!.id, "r1");
		for (let i = 0; i < 2_000; i++) c.send("{garbage");
		const seq = await publishA();
		assert.equal((await other.next((f) => f.type === "event")).offset, seq);
		assert.equal((await c.subscribe(`run:${runA.id}`)).type, "subscribed", "the socket still works");
	});

	it("checks the credential again on each subscribe: a revoked API key opens nothing new", async () => {
		const { key, record } = await p.broker.call<{ key: string; record: { id: string } }, object>("authz.apiKeys.create", { name: "live", user_id: "ana" });
		const c = await LiveClient.connect(p.url, { headers: { "x-api-key": key } });
		clients.push(c);
		await c.subscribe("runs:ws-a");
		await p.broker.call("authz.apiKeys.revoke", { id: record.id });
		await assert.rejects(c.subscribe("alerts:ws-a"), (err: { frame: LiveFrame }) => err.frame.status === 401);
	});

	it("tells a client whose offset is older than the stream's history, then delivers what is kept", async () => {
		await busOf(p.broker).jsm.streams.purge(STREAMS.telemetry.name);
		const kept = [await publishA(), await publishA()];
		const c = await connect();
		const sub = await c.subscribe(`run:${runA.id}`, { offset: 1 });
		const gap = await c.next((f) => f.type === "gap");
		assert.deepEqual([gap.reason, gap.offset, gap.epoch], ["history_gone", kept[0]! - 1, sub.epoch]);
		assert.deepEqual((await events(c, 2, `run:${runA.id}`)).map((f) => f.offset), kept);
		const live = await publishA();
		assert.equal((await c.next((f) => f.type === "event")).offset, live);
	});

	it("keeps a feed going through a restart of the NATS server: what is published after it arrives, in order", async () => {
		const c = await connect();
		await c.subscribe(`run:${runA.id}`);
		const before = await publishA();
		assert.equal((await c.next((f) => f.type === "event")).offset, before);
		await p.nats.restart(1_000);
		// Published once the platform's connection is back; the feed's ordered consumer recovers on its own.
		let after = 0;
		await waitFor("a publish to succeed after the restart", async () => (after = await publishA().catch(() => 0)) > 0, 20_000);
		// A publish that timed out during the restart may still have been stored: it comes first, then this one.
		const next = await c.next((f) => f.type === "event" && f.offset! >= after, 20_000);
		assert.deepEqual([next.offset, next.event], [after, "heartbeat"]);
	});

	it("ends a feed whose stream is recreated, telling its sockets; resuming then says the epoch changed", async () => {
		const admin = await connect(p.admin.access_token);
		const first = await admin.subscribe("audit");
		const { jsm } = busOf(p.broker);
		await jsm.streams.delete(STREAMS.audit.name);
		await ensureStreams(jsm, { replicas: 1, specs: [STREAMS.audit] });
		// Noticed within seconds (the feed's pulls expire after 5 s), not after the 30 s default.
		const ended = await admin.next((f) => f.type === "error" && f.topic === "audit", 15_000);
		assert.deepEqual([ended.status, ended.code], [503, "FEED_ENDED"]);
		assert.match(ended.message!, /recreated|gone/);
		admin.send({ op: "subscribe", topic: "audit", offset: first.offset, epoch: first.epoch });
		const gap = await admin.next((f) => f.type === "gap" && f.topic === "audit");
		assert.equal(gap.reason, "epoch_changed");
		// Live again on the new stream, under its own epoch.
		const viewer = await connect();
		await viewer.subscribe("alerts:ws-a");
		const record = await admin.next((f) => f.type === "event" && f.topic === "audit", 20_000);
		assert.equal(record.epoch, gap.epoch);
		assert.notEqual(record.epoch, first.epoch);
	});

	it("stops each feed when its last subscriber leaves, and closes sockets with 1001 when it stops", async () => {
		const live = (p.broker.getLocalService("gateway") as unknown as { live: Live }).live;
		await Promise.all(clients.splice(0).map((c) => c.kill()));
		await waitFor("every feed to stop", () => live.feeds === 0);
		const c = await connect();
		await c.subscribe(`run:${runA.id}`);
		assert.equal(live.feeds, 1);
		await live.close();
		assert.equal((await c.closed).code, 1001);
	});
});
