import { jetstream, jetstreamManager, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AckedPublisher } from "../events/acked-publisher";
import { RunTransitioned } from "../events/catalog";
import { EventPublisher, type Published } from "../events/publish";
import { readAfter } from "../events/stream-reader";
import { STREAMS } from "../events/streams";
import { subjects } from "../events/subjects";
import type { Heartbeat } from "../events/telemetry";
import { busOf } from "../lib/moleculer/bus.middleware";
import { DurableEventsMixin, onEvent } from "../lib/moleculer/durable-events.mixin";
import { credsAuthenticator } from "../lib/nats-auth";
import { PROJECT_ROOT } from "../lib/paths";
import { executionService } from "../services/execution/execution.service";
import { newRun, type Run } from "../services/execution/run";
import { queue } from "../services/execution/run-state";
import { RUNS_BUCKET, RunStore } from "../services/execution/run-store";
import { ALERT_RULES_BUCKET } from "../services/telemetry/alert-rule-store";
import { telemetryService } from "../services/telemetry/telemetry.service";
import type { AnyServiceSchema } from "../services/index";
import { startBroker, testConfig, testSchemas } from "./support/broker";
import { WidgetCreated, widgetIndexer } from "./support/events";
import { moveLeader, replicaState, startTestNatsCluster, storedOn, waitForReplicas, type TestNatsCluster } from "./support/nats-cluster";
import { sleep, waitFor } from "./support/wait";

const EVENTS = 2_000;
/** Events published just before the kill and sent again after it. */
const RESENT = 100;
/** Events published per tick, and the tick: a steady ~250 events/s, so the flow lasts ~8 s. */
const BURST = 10;
const TICK_MS = 40;
/** Short, so a message whose ack died with the server is redelivered within the test rather than after 30 s. */
const ACK_WAIT_MS = 2_000;
/** A leader election takes 2-5 s on nats-server 2.9; a consumer idle much longer than that has lost its pull. */
const MAX_CONSUMER_PAUSE_MS = 15_000;
/**
 * The platform's default. Killing the member that serves a sidecar and leads its stream silences it for 4.5-11.5 s
 * here (election, reconnect, and the runner's retry backoff): shorter intervals lose runs to the 3-interval watchdog.
 */
const HEARTBEAT_MS = 5_000;
const TRAINER = join(PROJECT_ROOT, "examples", "trainer.js");
const kvStream = (bucket: string) => `KV_${bucket}`;

let cluster: TestNatsCluster;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dataDir: string;
const brokers: ServiceBroker[] = [];

function client(opts: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
	return connect({
		servers: cluster.endpoint.servers,
		authenticator: credsAuthenticator(cluster.endpoint.creds!),
		maxReconnectAttempts: -1,
		reconnectTimeWait: 250,
		...opts,
	});
}

async function platform(nodeId: string, services: AnyServiceSchema[], env: Record<string, string>): Promise<ServiceBroker> {
	const b = await startBroker(cluster.endpoint, nodeId, services, env);
	brokers.push(b);
	return b;
}

/** The member a client is connected to right now. */
function memberOf(conn: NatsConnection): number {
	const i = cluster.names.indexOf(conn.info?.server_name ?? "");
	assert.ok(i >= 0, `connected to an unknown server ${conn.info?.server_name}`);
	return i;
}

/** Names of the client connections a member serves (its monitoring endpoint). */
async function connectionsOn(i: number): Promise<string[]> {
	const res = await fetch(`${cluster.monitorUrls[i]}/connz?limit=1024`);
	const body = (await res.json()) as { connections?: { name?: string }[] };
	return (body.connections ?? []).map((c) => c.name ?? "");
}

/** After a restart: member i is a current replica again and its own store holds what the leader holds. */
async function assertCaughtUp(stream: string, i: number): Promise<void> {
	const info = await waitForReplicas(jsm, stream, 2);
	const { leader, peers } = replicaState(info);
	assert.ok([leader, ...peers.map((p) => p.name)].includes(cluster.names[i]), `${stream}: ${cluster.names[i]} is a replica again`);
	await waitFor(`${cluster.names[i]} to hold all of ${stream}`, async () => {
		const mine = await storedOn(cluster, i, stream);
		return mine?.last_seq === info.state.last_seq && mine.messages === info.state.messages;
	});
}

/** The end of a local run's sidecar log: what it saw of the cluster. */
function sidecarLog(runId: string, attempt: number): string {
	try {
		return readFileSync(join(dataDir, "runs", runId, String(attempt), "runner.log"), "utf8").trim().split("\n").slice(-15).join("\n");
	} catch (err) {
		return `(no log: ${(err as Error).message})`;
	}
}

/**
 * Every message on `subject`, oldest first. Direct gets may be answered by a replica still catching up, so read
 * until they return as many as the stream's leader counts.
 */
async function storedMessages(stream: string, subject: string): Promise<StoredMsg[]> {
	const info = await jsm.streams.info(stream, { subjects_filter: subject });
	const count = info.state.subjects?.[subject] ?? 0;
	let messages: StoredMsg[] = [];
	await waitFor(`${count} messages on ${subject} from any replica`, async () => {
		({ messages } = await readAfter(jsm, stream, subject, 0, count + 1));
		return messages.length >= count;
	});
	return messages;
}

async function assertThreeReplicas(stream: string): Promise<void> {
	assert.equal((await jsm.streams.info(stream)).config.num_replicas, 3, `${stream} is created with 3 replicas`);
	const { leader, peers } = replicaState(await waitForReplicas(jsm, stream, 2));
	assert.deepEqual([leader, ...peers.map((p) => p.name)].sort(), cluster.names, `${stream} has a current replica on every member`);
}

describe("a 3-node NATS cluster loses a server mid-flow", { timeout: 150_000 }, () => {
	before(async () => {
		cluster = await startTestNatsCluster({ size: 3, operator: true });
		nc = await client();
		jsm = await jetstreamManager(nc);
		dataDir = mkdtempSync(join(tmpdir(), "savassan-cluster-"));
	});

	after(async () => {
		await Promise.all(brokers.splice(0).map((b) => b.stop()));
		await nc?.close();
		await cluster?.stop();
		if (dataDir) rmSync(dataDir, { recursive: true, force: true });
	});

	it("durable events with 3 replicas: the stream and consumer leader killed mid-flow, every event stored and handled once", async () => {
		interface Call {
			id: string;
			seq: number;
			deliveryCount: number;
			at: number;
		}
		const calls: Call[] = [];
		const applied = new Set<string>();
		// Idempotent by message id, as the platform asks of every handler: a redelivery is recognised and skipped.
		const widgets = {
			name: "widgets",
			mixins: [DurableEventsMixin],
			durableEvents: [
				onEvent(widgetIndexer, (ctx, d) => {
					calls.push({ id: ctx.params.id, seq: d.seq, deliveryCount: d.deliveryCount, at: Date.now() });
					applied.add(d.msgId!);
				}),
			],
		} as ServiceSchema;
		const consumerBroker = await platform("widgets-1", [widgets], { STREAM_REPLICAS: "3", EVENT_ACK_WAIT_MS: String(ACK_WAIT_MS) });
		await assertThreeReplicas(STREAMS.events.name);

		// The worst member to lose: the one the consumer's bus is connected to, made leader of the stream and of the
		// consumer, and the publisher's server too.
		const victim = memberOf(busOf(consumerBroker).nc);
		await moveLeader(nc, jsm, { stream: STREAMS.events.name }, cluster.names[victim]!);
		await moveLeader(nc, jsm, { stream: STREAMS.events.name, consumer: widgetIndexer.durable }, cluster.names[victim]!);
		const others = cluster.urls.filter((_u, i) => i !== victim);
		const pubNc = await client({ servers: [cluster.urls[victim]!, ...others], noRandomize: true });
		assert.equal(memberOf(pubNc), victim);
		const acked = new AckedPublisher(pubNc, 2_000);
		const publisher = new EventPublisher(acked, testSchemas);

		let failedAttempts = 0;
		// Retried until JetStream acknowledges it; the stable message id makes a retry of a stored event a no-op.
		const publishUntilAcked = async (i: number): Promise<Published> => {
			for (const deadline = Date.now() + 60_000; ; ) {
				try {
					return await publisher.publish(WidgetCreated, { id: `w-${i}`, name: `widget ${i}` }, { msgId: `cluster-w-${i}` });
				} catch (err) {
					failedAttempts++;
					if (Date.now() > deadline) throw err;
					await sleep(500);
				}
			}
		};

		const started = Date.now();
		const pending: Promise<Published>[] = [];
		let killed: { at: number; index: number; handled: number; done: Promise<void> } | undefined;
		let stall: number;
		try {
			for (let i = 0; i < EVENTS; i++) {
				// Mid-flow for both sides: half published and the consumer busy (at the latest near the end of the flow).
				if (!killed && i >= EVENTS / 2 && (applied.size >= 100 || i === EVENTS - 200)) {
					killed = { at: Date.now(), index: i, handled: applied.size, done: cluster.kill(victim) };
				}
				pending.push(publishUntilAcked(i));
				if (i % BURST === BURST - 1) await sleep(TICK_MS);
			}
			await killed!.done;
			const acks = await Promise.all(pending);
			const publishedMs = Date.now() - started;
			// A publisher that lost its acks with the server sends again what it cannot prove stored: the new leader
			// must know the ids the old one stored (the duplicate window is replicated).
			const resendFrom = killed!.index - RESENT;
			const resent = await Promise.all(Array.from({ length: RESENT }, (_v, k) => publishUntilAcked(resendFrom + k)));
			assert.ok(resent.every((p) => p.duplicate), "events sent again after the failover are recognised as stored");
			assert.deepEqual(resent.map((p) => p.seq), acks.slice(resendFrom, killed!.index).map((p) => p.seq), "and answered with their first sequence");
			await waitFor("every event to be handled", () => applied.size === EVENTS, 90_000);
			const handledMs = Date.now() - started;
			// Let a redelivery of anything unacknowledged at the kill arrive before counting.
			await waitFor(
				"the consumer to have nothing pending or unacknowledged",
				async () => {
					const info = await jsm.consumers.info(STREAMS.events.name, widgetIndexer.durable).catch(() => undefined);
					return info?.num_pending === 0 && info.num_ack_pending === 0;
				},
				30_000,
			);
			await sleep(ACK_WAIT_MS + 500);

			const stored = await jsm.streams.info(STREAMS.events.name, { subjects_filter: WidgetCreated.subject });
			assert.equal(stored.state.subjects?.[WidgetCreated.subject], EVENTS, "each event stored once: retries were deduplicated");
			assert.equal(new Set(acks.map((a) => a.seq)).size, EVENTS, "every publish acknowledged, each with its own sequence");

			const seqOf = new Map<string, number>();
			let redeliveries = 0;
			for (const c of calls) {
				const first = seqOf.get(c.id);
				if (first === undefined) {
					seqOf.set(c.id, c.seq);
					continue;
				}
				redeliveries++;
				assert.equal(c.seq, first, `${c.id} reached the handler again only as the same stored message`);
				assert.ok(c.deliveryCount > 1, `${c.id} came again as a redelivery (delivery ${c.deliveryCount}), not a second copy`);
			}
			assert.equal(seqOf.size, EVENTS, "every event reached the handler");
			assert.equal(applied.size, EVENTS, "every event applied once");
			const newLeader = replicaState(await jsm.streams.info(STREAMS.events.name)).leader;
			assert.ok(newLeader && newLeader !== cluster.names[victim], "another member leads the stream now");

			// Events wait in the stream from the first publish until the last is handled: any pause is the consumer's.
			const times = [started, ...calls.map((c) => c.at)];
			stall = Math.max(...times.slice(1).map((t, i) => t - times[i]!));
			const resumed = (calls.find((c) => c.at > killed!.at)?.at ?? NaN) - killed!.at;
			console.log(
				`cluster events: ${EVENTS} published in ${publishedMs} ms, all handled after ${handledMs} ms; killed ` +
					`${cluster.names[victim]} with ${killed!.handled} handled, handling resumed ${resumed} ms later; longest pause of ` +
					`the consumer ${stall} ms; ${failedAttempts} publish attempts unacknowledged and retried; ${redeliveries} ` +
					`redeliveries skipped by message id; new leader ${newLeader}`,
			);
		} finally {
			acked.close();
			await pubNc.close();
			if (killed) await cluster.restart(victim);
		}
		// The killed member came back on its store and catches up with what it missed.
		await assertCaughtUp(STREAMS.events.name, victim);

		assert.ok(
			stall <= MAX_CONSUMER_PAUSE_MS,
			`the consumer sat idle for ${stall} ms with events waiting after a leader change (limit ${MAX_CONSUMER_PAUSE_MS} ms)`,
		);
	});

	it("run documents read back what was just written while the runs bucket's leadership moves", async () => {
		const store = await RunStore.open(jetstream(nc), 3);
		const ex = testConfig().execution;
		const defaults = { image: ex.defaultImage, maxRetries: ex.maxRetries, timeoutSec: ex.timeoutSec, heartbeatIntervalMs: ex.heartbeatIntervalMs };
		const failures: string[] = [];
		const created: string[] = [];
		try {
			for (let move = 0; move < 8; move++) {
				const leader = replicaState(await jsm.streams.info(kvStream(RUNS_BUCKET))).leader;
				await moveLeader(nc, jsm, { stream: kvStream(RUNS_BUCKET) }, cluster.names.find((n) => n !== leader)!);
				for (let i = 0; i < 10; i++) {
					const run = newRun(`run-rw-${move}-${i}`, { workspace: "ws-rw", command: ["true"] }, defaults, `trace-rw-${move}-${i}`, new Date());
					await store.create(run);
					created.push(run.id);
					// What a submit does next: queue the run it has just stored.
					await store.update(run.id, (r) => queue(r, new Date())).catch((err: Error) => failures.push(err.message));
				}
			}
		} finally {
			store.close();
			// Queued runs would be launched by the execution service of the next case.
			const kv = await new Kvm(jetstream(nc)).open(RUNS_BUCKET);
			for (const id of created) await kv.purge(id);
		}
		assert.deepEqual(failures, [], "every update finds the run created just before");
	});

	it("a run keeps progressing when the member serving its sidecar and leading its stores is killed", async () => {
		const env = {
			DATA_DIR: dataDir,
			NATS_AUTHORITY: cluster.authorityFile!,
			RUN_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
			STREAM_REPLICAS: "3",
		};
		const broker = await platform("platform-1", [executionService(testConfig(env), { nats: cluster.endpoint }), telemetryService()], env);
		const runStores = [STREAMS.telemetry.name, STREAMS.events.name, kvStream(RUNS_BUCKET)];
		const stores = [...runStores, kvStream(ALERT_RULES_BUCKET)];
		for (const s of stores) await assertThreeReplicas(s);


		// Calls may fail while the cluster elects leaders: keep asking.
		const runIn = async (id: string, statuses: string[], timeoutMs: number): Promise<Run> => {
			let run: Run | undefined;
			await waitFor(`run ${id} to be ${statuses.join(" or ")}`, async () => {
				run = await broker.call<Run, { id: string }>("execution.get", { id }).catch(() => run);
				return !!run && statuses.includes(run.status);
			}, timeoutMs);
			return run!;
		};
		const heartbeatMessages = (r: Run) => storedMessages(STREAMS.telemetry.name, subjects.telemetry(r.workspace, r.id, "heartbeat"));
		const heartbeats = async (r: Run) => (await heartbeatMessages(r)).map((m) => m.json<Heartbeat>().seq);

		const run = await broker.call<Run, object>("execution.submit", {
			workspace: "ws-a",
			heartbeat_interval_ms: HEARTBEAT_MS,
			max_retries: 0,
			command: [process.execPath, TRAINER, "--epochs", "4", "--steps", "25", "--step-ms", "200"],
		});
		await runIn(run.id, ["RUNNING"], 30_000);
		await waitFor("two heartbeats stored", async () => (await heartbeats(run)).length >= 2, 2 * HEARTBEAT_MS + 10_000);
		// The worst member to lose: the one serving the sidecar, made leader of the stores the run lives in.
		const served = await Promise.all(cluster.names.map((_n, i) => connectionsOn(i)));
		const victim = served.findIndex((names) => names.some((name) => name.startsWith(`runner:${run.id}:`)));
		assert.ok(victim >= 0, `the sidecar is connected to a member: ${JSON.stringify(served)}`);
		for (const s of runStores) {
			await moveLeader(nc, jsm, { stream: s }, cluster.names[victim]!);
			await waitForReplicas(jsm, s, 2);
		}
		await cluster.kill(victim);
		const killedAt = Date.now();

		const done = await runIn(run.id, ["SUCCEEDED", "FAILED", "CANCELLED"], 60_000);
		const endedMs = Date.now() - killedAt;
		const storedAt = (await heartbeatMessages(run)).map((m) => m.time.getTime());
		const silence = Math.max(...storedAt.slice(1).map((t, i) => t - storedAt[i]!));
		console.log(
			`cluster run: ${done.status} ${endedMs} ms after ${cluster.names[victim]} was killed, ${storedAt.length} heartbeats, ` +
				`longest gap between stored heartbeats ${silence} ms (sent every ${HEARTBEAT_MS} ms, lost after ${3 * HEARTBEAT_MS} ms)`,
		);
		assert.equal(
			done.status,
			"SUCCEEDED",
			`the run ended ${done.status} (attempt ${done.attempt}): ${done.failure_message ?? ""}\n--- sidecar log ---\n${sidecarLog(run.id, done.attempt)}`,
		);
		assert.equal(done.attempt, 1, "the run was never taken for lost");
		assert.equal(done.exit_code, 0);
		const seqs = (await heartbeats(run)).sort((a, b) => a - b);
		assert.ok(seqs.length >= 4, `heartbeats: ${seqs.length}`);
		assert.deepEqual(seqs, seqs.map((_s, i) => i), "heartbeat seqs 0..n, each stored once");
		// A transition whose event could not be stored during the election is published by the watchdog's next sweep.
		const transitions = async () =>
			(await storedMessages(STREAMS.events.name, RunTransitioned.subject))
				.map((m) => m.json<RunTransitioned>())
				.filter((t) => t.run_id === run.id)
				.map((t) => `${t.from}>${t.to}@${t.attempt}`);
		await waitFor("the run's last transition event", async () => (await transitions()).length >= 3, 30_000);
		assert.deepEqual(await transitions(), ["PENDING>QUEUED@1", "QUEUED>RUNNING@1", "RUNNING>SUCCEEDED@1"], "each transition published once");

		await cluster.restart(victim);
		for (const s of stores) await assertCaughtUp(s, victim);
	});
});
