import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Context, Service, ServiceBroker, ServiceSchema } from "moleculer";
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { defineConsumer } from "../events/consumers";
import type { Delivery } from "../events/consume";
import { DLQ_HEADERS, HEADERS } from "../events/headers";
import { AckedPublisher } from "../events/acked-publisher";
import { EventPublisher, EventValidationError } from "../events/publish";
import { STREAMS } from "../events/streams";
import { subjects } from "../events/subjects";
import { busOf } from "../lib/moleculer/bus.middleware";
import { DurableEventsMixin, onEvent } from "../lib/moleculer/durable-events.mixin";
import { deadLettersService } from "../services/deadletters/deadletters.service";
import type { AnyServiceSchema } from "../services/index";
import { startBroker, testSchemas } from "./support/broker";
import { WidgetCreated, widgetIndexer } from "./support/events";
import { startTestNats, type TestNats } from "./support/nats";
import { sleep, waitFor } from "./support/wait";

let nats: TestNats;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let acked: AckedPublisher;
let publisher: EventPublisher;
const brokers: ServiceBroker[] = [];

interface Seen {
	id: string;
	delivery: Delivery;
	node: string;
	ctx: Context<WidgetCreated>;
}

/** A service reacting to test.widget.created; `behave` decides what each attempt does. */
function widgetService(seen: Seen[], behave: (p: WidgetCreated, d: Delivery) => Promise<void> | void = () => {}): ServiceSchema {
	return {
		name: "widgets",
		mixins: [DurableEventsMixin],
		durableEvents: [
			onEvent(widgetIndexer, async function (ctx, delivery) {
				await behave(ctx.params, delivery);
				seen.push({ id: ctx.params.id, delivery, node: this.broker.nodeID, ctx });
			}),
		],
	} as ServiceSchema;
}

async function start(nodeId: string, services: AnyServiceSchema[], env: Record<string, string> = {}): Promise<ServiceBroker> {
	const b = await startBroker(nats.url, nodeId, services, { EVENT_MAX_DELIVERIES: "3", ...env });
	brokers.push(b);
	return b;
}

async function stopAll(): Promise<void> {
	await Promise.all(brokers.splice(0).map((b) => b.stop()));
}

/** Every message in the dead-letter stream, oldest first. */
async function deadLetters() {
	const { state } = await jsm.streams.info(STREAMS.deadLetters.name);
	const out = [];
	for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
		const m = await jsm.streams.getMessage(STREAMS.deadLetters.name, { seq }).catch(() => null);
		if (m) out.push(m);
	}
	return out;
}

async function consumerState() {
	const info = await jsm.consumers.info(STREAMS.events.name, widgetIndexer.durable);
	return { pending: info.num_pending, unacked: info.num_ack_pending, redelivered: info.num_redelivered };
}

function widget(i: number): WidgetCreated {
	return { id: `w-${i}`, name: `widget ${i}` };
}

describe("events layer on a real nats-server", () => {
	before(async () => {
		nats = await startTestNats();
		nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
		jsm = await jetstreamManager(nc);
		// A broker start sets the streams up, as the platform does.
		await start("setup", []);
		await stopAll();
		js = jetstream(nc);
		acked = new AckedPublisher(nc);
		publisher = new EventPublisher(acked, testSchemas);
	});

	beforeEach(async () => {
		await stopAll();
		// Each case starts from an empty stream and a fresh durable consumer.
		for (const s of [STREAMS.events.name, STREAMS.deadLetters.name]) await jsm.streams.purge(s);
		await jsm.consumers.delete(STREAMS.events.name, widgetIndexer.durable).catch(() => undefined);
	});

	after(async () => {
		await stopAll();
		acked?.close();
		await nc?.close();
		await nats?.stop();
	});

	it("binds consumers only after the service's own started is done, and drains them before its stopped", async () => {
		for (let i = 0; i < 20; i++) await publisher.publish(WidgetCreated, widget(i), { msgId: `lifecycle-${i}` });
		const seenReady: boolean[] = [];
		let stoppedWhileHandling = false;
		let handling = 0;
		const service = {
			name: "widgets",
			mixins: [DurableEventsMixin],
			durableEvents: [
				onEvent(widgetIndexer, async function (this: Service & { ready?: boolean }) {
					handling++;
					seenReady.push(this.ready === true);
					await sleep(10);
					handling--;
				}),
			],
			async started(this: Service & { ready?: boolean }) {
				// The stream already holds events: a consumer bound now would meet a half-started service.
				await sleep(300);
				this.ready = true;
			},
			stopped() {
				if (handling > 0) stoppedWhileHandling = true;
			},
		} as ServiceSchema;
		const b = await start("n1", [service]);
		await waitFor("some events handled", () => seenReady.length >= 5);
		await b.stop();
		assert.ok(seenReady.every(Boolean), "every handler ran after started had finished");
		assert.equal(stoppedWhileHandling, false, "stopped ran only after the handlers under way had finished");
	});

	it("publishes with id, trace and schema headers; the consumer handles it once and acks", async () => {
		const seen: Seen[] = [];
		await start("n1", [widgetService(seen)]);
		const pub = await publisher.publish(WidgetCreated, widget(1), { msgId: "widget-1-created", traceId: "trace-abc" });
		assert.equal(pub.stream, "EVENTS");
		assert.equal(pub.duplicate, false);

		const stored = await jsm.streams.getMessage(STREAMS.events.name, { seq: pub.seq });
		assert.equal(stored!.subject, "evt.test.widget.created");
		assert.equal(stored!.header.get(HEADERS.msgId), "widget-1-created");
		assert.equal(stored!.header.get(HEADERS.traceId), "trace-abc");
		assert.equal(stored!.header.get(HEADERS.eventType), "test.widget.created");
		assert.equal(stored!.header.get(HEADERS.schemaVersion), "1");

		await waitFor("the event to be handled", () => seen.length === 1);
		const [s] = seen;
		assert.equal(s!.id, "w-1");
		assert.equal(s!.delivery.msgId, "widget-1-created");
		assert.equal(s!.delivery.deliveryCount, 1);
		assert.equal(s!.delivery.traceId, "trace-abc");
		assert.equal(s!.ctx.requestID, "trace-abc", "the handler's context carries the trace on");
		await waitFor("the ack", async () => (await consumerState()).unacked === 0);
		assert.deepEqual(await consumerState(), { pending: 0, unacked: 0, redelivered: 0 });
		await sleep(300);
		assert.equal(seen.length, 1, "handled exactly once");
	});

	it("redelivers with backoff after the handler throws, then acks on success", async () => {
		const seen: Seen[] = [];
		const attempts: number[] = [];
		await start("n1", [
			widgetService(seen, (_p, d) => {
				attempts.push(d.deliveryCount);
				if (d.deliveryCount < 3) throw new Error(`transient failure ${d.deliveryCount}`);
			}),
		]);
		await publisher.publish(WidgetCreated, widget(2));
		await waitFor("the third attempt to succeed", () => seen.length === 1);
		assert.deepEqual(attempts, [1, 2, 3]);
		await waitFor("the ack", async () => (await consumerState()).unacked === 0);
		const dlq = await jsm.streams.info(STREAMS.deadLetters.name);
		assert.equal(dlq.state.messages, 0, "a message that finally succeeded is not dead-lettered");
	});

	it("dead-letters after N failed deliveries with the error and original headers; replay puts it back", async () => {
		const seen: Seen[] = [];
		let healthy = false;
		const attempts: number[] = [];
		await start("n1", [
			widgetService(seen, (_p, d) => {
				attempts.push(d.deliveryCount);
				if (!healthy) throw new Error("database unreachable\nsecond line");
			}),
			deadLettersService(),
		]);
		const pub = await publisher.publish(WidgetCreated, widget(3), { msgId: "w3", traceId: "trace-dlq" });
		// A later valid event keeps flowing while the poison one is retried.
		healthy = false;
		await waitFor("dead letter", async () => (await jsm.streams.info(STREAMS.deadLetters.name)).state.messages === 1);
		assert.deepEqual(attempts, [1, 2, 3], "exactly EVENT_MAX_DELIVERIES attempts");

		const [dl] = await deadLetters();
		assert.equal(dl!.subject, subjects.deadLetter("EVENTS", widgetIndexer.durable));
		assert.equal(dl!.header.get(DLQ_HEADERS.reason), "handler-failed");
		assert.equal(dl!.header.get(DLQ_HEADERS.error), "Error: database unreachable second line");
		assert.equal(dl!.header.get(DLQ_HEADERS.subject), "evt.test.widget.created");
		assert.equal(dl!.header.get(DLQ_HEADERS.seq), String(pub.seq));
		assert.equal(dl!.header.get(DLQ_HEADERS.msgId), "w3");
		assert.equal(dl!.header.get(DLQ_HEADERS.deliveries), "3");
		assert.equal(dl!.header.get(HEADERS.traceId), "trace-dlq", "original headers are kept");
		assert.equal(dl!.header.get(HEADERS.eventType), "test.widget.created");
		assert.deepEqual(JSON.parse(new TextDecoder().decode(dl!.data)), widget(3), "payload unchanged");
		await waitFor("the original to be acked", async () => (await consumerState()).unacked === 0);

		const broker = brokers[0]!;
		const listed = await broker.call<{ items: { seq: number; reason: string; consumer: string; payload: unknown }[] }, object>(
			"deadletters.list",
			{ consumer: widgetIndexer.durable },
		);
		const dlSeq = listed.items[0]!.seq;
		assert.equal(listed.items.length, 1);
		assert.equal(listed.items[0]!.reason, "handler-failed");
		assert.deepEqual(listed.items[0]!.payload, widget(3));
		const stats = await broker.call<{ total: number; by_consumer: unknown[] }>("deadletters.stats");
		assert.deepEqual(stats, { total: 1, by_consumer: [{ stream: "EVENTS", consumer: widgetIndexer.durable, count: 1 }] });

		healthy = true;
		const replay = await broker.call<{ replayed_seq: number }, object>("deadletters.replay", { seq: dlSeq });
		await waitFor("the replayed event to be handled", () => seen.length === 1);
		assert.equal(seen[0]!.id, "w-3");
		assert.equal(seen[0]!.delivery.traceId, "trace-dlq", "the replay keeps the original trace");
		assert.ok(replay.replayed_seq > pub.seq);
		assert.equal((await jsm.streams.info(STREAMS.deadLetters.name)).state.messages, 0, "replayed letter removed");
		await assert.rejects(broker.call("deadletters.get", { seq: dlSeq }), { code: 404, type: "NOT_FOUND" });
	});

	it("dead-letters malformed and schema-invalid messages at once, naming the field, while valid ones flow", async () => {
		const seen: Seen[] = [];
		await start("n1", [widgetService(seen)]);
		const subject = WidgetCreated.subject;
		// Published with an expectation header that is right for EVENTS: it must not follow the message into the DLQ.
		await js.publish(subject, "{not json", { msgID: "bad-json", expect: { streamName: "EVENTS" } });
		await js.publish(subject, JSON.stringify({ id: "w-x", name: 42 }), { msgID: "bad-field" });
		await publisher.publish(WidgetCreated, widget(4));
		await waitFor("the valid event", () => seen.length === 1);
		await waitFor("two dead letters", async () => (await jsm.streams.info(STREAMS.deadLetters.name)).state.messages === 2);
		const byId = new Map((await deadLetters()).map((m) => [m.header.get(DLQ_HEADERS.msgId), m]));
		const malformed = byId.get("bad-json")!;
		assert.equal(malformed.header.get(DLQ_HEADERS.reason), "malformed");
		assert.match(malformed.header.get(DLQ_HEADERS.error), /not JSON/);
		assert.equal(malformed.header.get(DLQ_HEADERS.deliveries), "1", "no retries for a message that cannot parse");
		const invalid = byId.get("bad-field")!;
		assert.equal(invalid.header.get(DLQ_HEADERS.reason), "schema");
		assert.match(invalid.header.get(DLQ_HEADERS.error), /'name' must be string/);
		assert.equal(seen[0]!.id, "w-4");
	});

	it("dead-letters a message whose earlier deliveries were never acknowledged (handler process died)", async () => {
		// Simulate three crashed attempts: take the message three times without acking it.
		const seen: Seen[] = [];
		const b = await start("n1", [widgetService(seen)], { EVENT_ACK_WAIT_MS: "1000" });
		await b.stop();
		brokers.length = 0;
		await publisher.publish(WidgetCreated, widget(5), { msgId: "w5" });
		const raw = await js.consumers.get(STREAMS.events.name, widgetIndexer.durable);
		for (let i = 1; i <= 3; i++) {
			const m = await raw.next({ expires: 5_000 });
			assert.equal(m?.info.deliveryCount, i);
		}
		await start("n2", [widgetService(seen)], { EVENT_ACK_WAIT_MS: "1000" });
		await waitFor("dead letter", async () => (await jsm.streams.info(STREAMS.deadLetters.name)).state.messages === 1);
		const [dl] = await deadLetters();
		assert.equal(dl!.header.get(DLQ_HEADERS.reason), "max-deliveries");
		assert.equal(dl!.header.get(DLQ_HEADERS.deliveries), "4");
		assert.equal(seen.length, 0, "the handler is not run a fourth time");
	});

	it("a handler that hangs past the ack wait counts as a failed attempt and does not block the next message", async () => {
		const seen: Seen[] = [];
		await start(
			"n1",
			[
				widgetService(seen, (p) => (p.id === "w-hang" ? new Promise(() => {}) : undefined)),
			],
			{ EVENT_ACK_WAIT_MS: "1000", EVENT_MAX_DELIVERIES: "2" },
		);
		await publisher.publish(WidgetCreated, { id: "w-hang", name: "hangs" });
		await publisher.publish(WidgetCreated, widget(6));
		await waitFor("the next message", () => seen.some((s) => s.id === "w-6"), 5_000);
		await waitFor("the hung one dead-lettered", async () => (await jsm.streams.info(STREAMS.deadLetters.name)).state.messages === 1, 8_000);
		const [dl] = await deadLetters();
		assert.match(dl!.header.get(DLQ_HEADERS.error), /HandlerTimeoutError: handler did not finish within 800 ms/);
	});

	it("stores a republished message id once", async () => {
		const seen: Seen[] = [];
		await start("n1", [widgetService(seen)]);
		const a = await publisher.publish(WidgetCreated, widget(7), { msgId: "widget-7:created" });
		const b = await publisher.publish(WidgetCreated, widget(7), { msgId: "widget-7:created" });
		assert.equal(b.duplicate, true);
		assert.equal(b.seq, a.seq);
		await waitFor("handled", () => seen.length === 1);
		await sleep(300);
		assert.equal(seen.length, 1);
		assert.equal((await jsm.streams.info(STREAMS.events.name)).state.messages, 1);
	});

	it("a consumer that was down receives everything published meanwhile, in order, once", async () => {
		const seen: Seen[] = [];
		const b = await start("n1", [widgetService(seen)]);
		await publisher.publish(WidgetCreated, widget(0));
		await waitFor("first", () => seen.length === 1);
		await b.stop();
		brokers.length = 0;
		for (let i = 1; i <= 50; i++) await publisher.publish(WidgetCreated, widget(i));
		await sleep(200);
		assert.equal(seen.length, 1, "nothing handled while down");
		await start("n1-again", [widgetService(seen)]);
		await waitFor("all 51", () => seen.length === 51);
		assert.deepEqual(
			seen.map((s) => s.id),
			Array.from({ length: 51 }, (_, i) => `w-${i}`),
		);
		await sleep(300);
		assert.equal(seen.length, 51, "no duplicates");
	});

	it("two instances of a service share one durable consumer without double-processing", async () => {
		const seen: Seen[] = [];
		const slow = () => sleep(2);
		await start("a", [widgetService(seen, slow)]);
		await start("b", [widgetService(seen, slow)]);
		const infos = await jsm.consumers.list(STREAMS.events.name).next();
		assert.deepEqual(
			infos.map((i) => i.name).filter((n) => n.startsWith("widgets")),
			[widgetIndexer.durable],
			"one durable for both instances",
		);
		const N = 400;
		await Promise.all(Array.from({ length: N }, (_, i) => publisher.publish(WidgetCreated, widget(i))));
		await waitFor("all handled", () => seen.length >= N, 20_000);
		await sleep(500);
		const ids = seen.map((s) => s.id);
		assert.equal(ids.length, N, "no message handled twice");
		assert.equal(new Set(ids).size, N, "every message handled");
		const byNode = { a: seen.filter((s) => s.node === "a").length, b: seen.filter((s) => s.node === "b").length };
		assert.ok(byNode.a > 0 && byNode.b > 0, `both instances took work: ${JSON.stringify(byNode)}`);
	});

	it("rejects an invalid payload before publishing, naming the field, and stores nothing", async () => {
		const before = (await jsm.streams.info(STREAMS.events.name)).state.last_seq;
		await assert.rejects(
			publisher.publish(WidgetCreated, { id: "w-9", name: "", tags: ["ok", 7] } as unknown as WidgetCreated),
			(err: unknown) => {
				assert.ok(err instanceof EventValidationError);
				assert.deepEqual(
					err.fields.map((f) => f.field),
					["name", "tags[1]"],
				);
				assert.match(err.message, /invalid payload for event test\.widget\.created: 'name' must NOT have fewer than 1 characters; 'tags\[1\]' must be string/);
				return true;
			},
		);
		await assert.rejects(publisher.publish(WidgetCreated, { id: "w-9", name: "x", colour: "red" } as unknown as WidgetCreated), /'colour' is not allowed/);
		assert.equal((await jsm.streams.info(STREAMS.events.name)).state.last_seq, before);
	});

	it("keeps consuming across a NATS server restart: nothing lost", async () => {
		const seen: Seen[] = [];
		const b = await start("n1", [widgetService(seen)]);
		for (let i = 0; i < 100; i++) await publisher.publish(WidgetCreated, widget(i), { msgId: `restart-${i}` });
		// Handled and acked before the restart: what comes back after it must not be these again.
		await waitFor("the first 100 handled", () => new Set(seen.map((s) => s.id)).size === 100);
		await sleep(200);
		await nats.restart(300);
		// Publishing right after the restart may race the client's reconnect: retry with the same id, as a producer should.
		for (let i = 100; i < 200; i++) {
			for (let attempt = 0; ; attempt++) {
				try {
					await publisher.publish(WidgetCreated, widget(i), { msgId: `restart-${i}` });
					break;
				} catch (err) {
					if (attempt > 50) throw err;
					await sleep(100);
				}
			}
		}
		await waitFor("all 200 handled after the restart", () => new Set(seen.map((s) => s.id)).size === 200, 30_000);
		assert.equal((await jsm.streams.info(STREAMS.events.name)).state.messages, 200, "no id stored twice");
		await sleep(500);
		// At least once allows a redelivery whose ack was lost in the restart, never a replay of the history.
		assert.ok(seen.length <= 210, `handled ${seen.length} times for 200 events`);
		await waitFor("bus reports connected", () => busOf(b).connected);
	});
});

describe("consumer declarations", () => {
	it("names the durable after the service and the event", () => {
		assert.equal(widgetIndexer.durable, "widgets__test_widget_created");
		assert.equal(defineConsumer("v2.catalog", WidgetCreated).durable, "v2_catalog__test_widget_created");
		assert.throws(() => defineConsumer("bad service", WidgetCreated), /not a valid subject token/);
	});

	it("a service cannot bind a consumer declared for another service", async () => {
		const n = await startTestNats();
		try {
			const wrong = {
				name: "imposter",
				mixins: [DurableEventsMixin],
				durableEvents: [onEvent(widgetIndexer, () => {})],
			} as ServiceSchema;
			await assert.rejects(startBroker(n.url, "x", [wrong]), /service imposter subscribes with consumer widgets__test_widget_created, which is declared for widgets/);
		} finally {
			await n.stop();
		}
	});
});


describe("consumer resilience", () => {
	it("recreates a durable deleted under a running service and keeps consuming", async () => {
		const n = await startTestNats();
		const conn = await connect({ servers: n.url });
		const pubAcked = new AckedPublisher(conn);
		let b: ServiceBroker | undefined;
		try {
			const seen: string[] = [];
			const svc = {
				name: "widgets",
				mixins: [DurableEventsMixin],
				durableEvents: [onEvent(widgetIndexer, (ctx) => void seen.push(ctx.params.id))],
			} as ServiceSchema;
			b = await startBroker(n.url, "r1", [svc]);
			const pub = new EventPublisher(pubAcked, testSchemas);
			await pub.publish(WidgetCreated, widget(1));
			await waitFor("first", () => seen.length === 1);
			const m = await jetstreamManager(conn);
			await m.consumers.delete(STREAMS.events.name, widgetIndexer.durable);
			await sleep(500);
			await pub.publish(WidgetCreated, widget(2));
			await waitFor("consumption to resume", () => seen.includes("w-2"), 10_000);
			// A recreated durable reads the stream from its start again: idempotent handlers see w-1 twice.
			assert.deepEqual(seen, ["w-1", "w-1", "w-2"]);
		} finally {
			await b?.stop();
			pubAcked.close();
			await conn.close();
			await n.stop();
		}
	});
});
