import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { STREAMS, StreamSetupError, ensureStreams } from "../events/streams";
import { Bus } from "../lib/bus";
import { freePort } from "../lib/nats-server";
import { testSchemas } from "./support/broker";
import { startTestNats, type TestNats } from "./support/nats";

const quiet = { info() {}, warn() {} };

describe("streams and the bus connection", () => {
	let nats: TestNats;
	let nc: NatsConnection;
	let jsm: JetStreamManager;

	before(async () => {
		nats = await startTestNats();
		nc = await connect({ servers: nats.url });
		jsm = await jetstreamManager(nc);
	});

	after(async () => {
		await nc?.close();
		await nats?.stop();
	});

	it("creates every declared stream, then changes nothing on the next start", async () => {
		const first = await ensureStreams(jsm, { replicas: 1 });
		assert.deepEqual(first.created, ["EVENTS", "TELEMETRY", "INGEST", "AUDIT", "DEADLETTER"]);
		const second = await ensureStreams(jsm, { replicas: 1 });
		assert.deepEqual(second, { created: [], updated: [] });
		const info = await jsm.streams.info("EVENTS");
		assert.deepEqual(info.config.subjects, ["evt.>"]);
		assert.equal(info.config.duplicate_window, nanos(STREAMS.events.duplicateWindowMs));
		assert.equal((await jsm.streams.info("DEADLETTER")).config.discard, "new", "a full DLQ refuses rather than drops");
	});

	it("brings a drifted stream back to its declared config, keeping its messages", async () => {
		await jsm.streams.update("AUDIT", { max_age: nanos(20 * 86_400_000) });
		const js = (await import("@nats-io/jetstream")).jetstream(nc);
		await js.publish("audit.test.kept", "{}");
		const res = await ensureStreams(jsm, { replicas: 1 });
		assert.deepEqual(res, { created: [], updated: ["AUDIT"] });
		const info = await jsm.streams.info("AUDIT");
		assert.equal(info.config.max_age, nanos(STREAMS.audit.maxAgeMs));
		assert.equal(info.state.messages, 1);
	});

	it("fails with a clear error when a stream cannot be set up", async () => {
		// On a shared NATS, another application's stream may already own our subjects.
		await jsm.streams.delete("INGEST");
		await jsm.streams.add({ name: "FOREIGN", subjects: ["ingest.>"] });
		await assert.rejects(
			ensureStreams(jsm, { replicas: 1 }),
			(err: unknown) => err instanceof StreamSetupError && /^cannot set up stream INGEST \(ingest\.>\): .*overlap/i.test(err.message),
		);
		await jsm.streams.delete("FOREIGN");
		assert.deepEqual((await ensureStreams(jsm, { replicas: 1 })).created, ["INGEST"]);
	});

	it("says which server it could not reach", async () => {
		const port = await freePort();
		await assert.rejects(
			Bus.connect({ servers: [`nats://u:secret@127.0.0.1:${port}`], name: "t", schemas: testSchemas, streamReplicas: 1, log: quiet }),
			(err: Error) => err.message.startsWith(`cannot connect to NATS at nats://u:***@127.0.0.1:${port}`) && !err.message.includes("secret"),
		);
	});
});
