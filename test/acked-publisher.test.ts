import { jetstreamManager, DiscardPolicy } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AckedPublisher, PublishError } from "../events/acked-publisher";
import { Deadlines } from "../lib/deadlines";
import { startTestNats, type TestNats } from "./support/nats";
import { sleep } from "./support/wait";

describe("AckedPublisher on a real nats-server", () => {
	let nats: TestNats;
	let nc: NatsConnection;

	before(async () => {
		nats = await startTestNats();
		nc = await connect({ servers: nats.url });
		const jsm = await jetstreamManager(nc);
		await jsm.streams.add({ name: "ACKS", subjects: ["acks.>"] });
		await jsm.streams.add({ name: "TINY", subjects: ["tiny.>"], max_msgs: 1, discard: DiscardPolicy.New });
	});

	after(async () => {
		await nc?.close();
		await nats?.stop();
	});

	it("resolves with the stream's sequence, and flags a repeated Nats-Msg-Id as duplicate", async () => {
		const p = new AckedPublisher(nc);
		const acks = await Promise.all(Array.from({ length: 500 }, (_, i) => p.publish("acks.many", `m${i}`)));
		assert.deepEqual(
			acks.map((a) => a.seq).sort((x, y) => x - y),
			Array.from({ length: 500 }, (_, i) => i + 1),
		);
		const h = headers();
		h.set("Nats-Msg-Id", "once");
		const first = await p.publish("acks.dedupe", "x", h);
		const again = await p.publish("acks.dedupe", "x", h);
		assert.deepEqual(again, { stream: "ACKS", seq: first.seq, duplicate: true });
		p.close();
	});

	it("fails clearly when no stream takes the subject", async () => {
		const p = new AckedPublisher(nc);
		await assert.rejects(p.publish("nowhere.x", "x"), { name: "PublishError", message: "no stream accepts subject nowhere.x" });
		p.close();
	});

	it("passes on JetStream's refusal with its code (a full stream that discards new)", async () => {
		const p = new AckedPublisher(nc);
		await p.publish("tiny.a", "1");
		await assert.rejects(p.publish("tiny.a", "2"), (err: unknown) => {
			assert.ok(err instanceof PublishError);
			assert.match(err.message, /^JetStream refused tiny\.a: maximum messages exceeded/);
			assert.equal(err.errCode, 10077);
			return true;
		});
		p.close();
	});

	it("times out when nothing acknowledges, and close() fails what is pending", async () => {
		const silent = nc.subscribe("silent.x"); // interest without a reply: no 503, no ack
		const p = new AckedPublisher(nc, 300);
		const t0 = Date.now();
		await assert.rejects(p.publish("silent.x", "x"), /no acknowledgement for silent\.x within 300 ms/);
		assert.ok(Date.now() - t0 < 1_000);
		const pending = p.publish("silent.x", "y");
		p.close();
		await assert.rejects(pending, /publisher closed before silent\.x was acknowledged/);
		await assert.rejects(p.publish("acks.late", "z"), /publisher is closed; acks\.late not sent/);
		silent.unsubscribe();
	});
});

describe("Deadlines", () => {
	it("settles with the work when it finishes in time, else with the deadline's error", async () => {
		const d = new Deadlines(10);
		assert.equal(await d.race(sleep(5).then(() => "done"), 200, () => new Error("late")), "done");
		await assert.rejects(d.race(sleep(300), 50, () => new Error("late")), /late/);
		await assert.rejects(d.race(Promise.reject(new Error("own")), 50, () => new Error("late")), /own/);
		assert.equal(d.size, 0, "settled work leaves nothing behind");
	});

	it("fires each expiry once, not for cleared entries", async () => {
		const d = new Deadlines(10);
		const fired: number[] = [];
		d.add(20, () => fired.push(1));
		const id = d.add(20, () => fired.push(2));
		d.clear(id);
		await sleep(80);
		assert.deepEqual(fired, [1]);
		assert.equal(d.size, 0);
	});
});
