import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { INGEST_GATE_DURABLE, IngestDatasetVersionReceived, type DatasetVersionAnnounced, type IngestReceived } from "../events/ingest";
import { STREAMS } from "../events/streams";
import { subjects } from "../events/subjects";
import { busOf } from "../lib/moleculer/bus.middleware";
import { credsAuthenticator } from "../lib/nats-auth";
import type { DatasetVersion } from "../services/catalog/registry/entities";
import { INGESTED_TAG, ingestedVersionId } from "../services/catalog/registry/ingested";
import type { DeadLetter } from "../services/deadletters/dead-letter";
import { startEdgePlatform, type EdgePlatform } from "./support/edge-platform";
import { waitFor } from "./support/wait";

const DATASET_VERSION = subjects.ingest("acme", "dataset_version");
const FORWARDED = IngestDatasetVersionReceived.subject;

function announcement(version: string): DatasetVersionAnnounced {
	return { workspace: "wsa", dataset_id: "street-signs", version, manifest_uri: `s3://lake/street-signs/${version}/manifest.json`, file_count: 12, bytes: 3_400 };
}

/** An external producer, logged in with producer credentials minted by the platform's authority. */
async function producer(p: EdgePlatform, source: string): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
	const nc = await connect({
		servers: [p.nats.url],
		authenticator: credsAuthenticator(await p.nats.authority!.producerCreds(source)),
		inboxPrefix: subjects.inboxOfProducer(source),
	});
	return { nc, js: jetstream(nc) };
}

describe("the ingest gate: external producers' events validated, forwarded or dead-lettered", () => {
	let p: EdgePlatform;
	let acme: { nc: NatsConnection; js: JetStreamClient };

	const stored = async (stream: string, subject: string): Promise<number> => {
		const info = await busOf(p.broker).jsm.streams.info(stream, { subjects_filter: subject });
		return info.state.subjects?.[subject] ?? 0;
	};
	const forwarded = () => stored(STREAMS.events.name, FORWARDED);
	const deadLetters = async (): Promise<DeadLetter[]> =>
		(await p.broker.call<{ items: DeadLetter[] }, object>("deadletters.list", { stream: STREAMS.ingest.name, consumer: INGEST_GATE_DURABLE, after_seq: 0, limit: 500 }))
			.items;
	/** Everything in INGEST acknowledged by the gate: forwarded or dead-lettered, none pending. */
	const settled = async (): Promise<boolean> => {
		const info = await busOf(p.broker).jsm.consumers.info(STREAMS.ingest.name, INGEST_GATE_DURABLE);
		return info.num_pending === 0 && info.num_ack_pending === 0;
	};
	const publish = (subject: string, data: string, msgId?: string) => {
		const h = natsHeaders();
		if (msgId) h.set("Nats-Msg-Id", msgId);
		return acme.js.publish(subject, data, { headers: h });
	};

	before(async () => {
		p = await startEdgePlatform("ingest", { ingest: true });
		acme = await producer(p, "acme");
	});
	after(async () => {
		await acme?.nc.close();
		await p?.close();
	});

	it("forwards a valid event once as its domain event, however often it is published with its message id", async () => {
		const first = await publish(DATASET_VERSION, JSON.stringify({ ...announcement("v1"), classes: ["stop", "yield"], owner: "data-team" }), "acme-v1");
		const again = await publish(DATASET_VERSION, JSON.stringify({ ...announcement("v1"), classes: ["stop", "yield"], owner: "data-team" }), "acme-v1");
		assert.equal(again.duplicate, true);
		await waitFor("the forwarded event", async () => (await forwarded()) === 1);
		await waitFor("the gate to settle", settled);
		assert.equal(await forwarded(), 1);
		const event = await busOf(p.broker).jsm.streams.getMessage(STREAMS.events.name, { last_by_subj: FORWARDED });
		const payload = event!.json<IngestReceived<DatasetVersionAnnounced>>();
		assert.equal(payload.source, "acme");
		assert.equal(payload.ingest_seq, first.seq);
		assert.equal(payload.payload.version, "v1");
		assert.deepEqual(payload.payload.classes, ["stop", "yield"]);
		assert.equal(event!.header.get("Nats-Msg-Id"), `${STREAMS.ingest.name}:${first.seq}:forwarded`);
	});

	it("dead-letters non-JSON, a payload against its schema and an unknown type, each with its reason", async () => {
		const before = (await deadLetters()).length;
		const { bytes: _bytes, ...noBytes } = announcement("v2");
		const notJson = await publish(DATASET_VERSION, "{not json");
		const invalid = await publish(DATASET_VERSION, JSON.stringify({ ...noBytes, file_count: -1 }));
		const unknown = await publish(subjects.ingest("acme", "weather_report"), JSON.stringify({ temperature: 3 }));
		await waitFor("three dead letters", async () => (await deadLetters()).length === before + 3);
		const bySeq = new Map((await deadLetters()).map((d) => [d.original.seq, d]));
		assert.equal(bySeq.get(notJson.seq)?.reason, "malformed");
		assert.match(bySeq.get(notJson.seq)!.error, /not JSON/);
		assert.equal(bySeq.get(notJson.seq)?.payload_text, "{not json", "the original is kept");
		// Screened before any handler attempt: dead-lettered at once, not after retries.
		assert.deepEqual([bySeq.get(invalid.seq)?.reason, bySeq.get(unknown.seq)?.reason], ["schema", "schema"]);
		assert.match(bySeq.get(invalid.seq)!.error, /'bytes' is required/);
		assert.match(bySeq.get(invalid.seq)!.error, /'file_count' must be >= 0/);
		assert.match(bySeq.get(unknown.seq)!.error, /'type' "weather_report" is not an accepted ingest type \(accepted: dataset_version\)/);
		assert.equal(bySeq.get(unknown.seq)?.original.subject, subjects.ingest("acme", "weather_report"));
		await waitFor("the gate to settle", settled);
		assert.equal(await forwarded(), 1, "nothing invalid forwarded");
	});

	it("gets an announced version into the catalog, with its dataset, searchable in its workspace", async () => {
		const get = () => p.broker.call<DatasetVersion, object>("catalog.get", { kind: "dataset_version", id: ingestedVersionId(announcement("v1")) }).catch(() => undefined);
		await waitFor("the catalog to register the announced version", async () => (await get()) !== undefined);
		const version = (await get())!;
		assert.deepEqual(
			[version.dataset_id, version.version, version.owner, version.tags, version.manifest_uri],
			["street-signs", "v1", "data-team", [INGESTED_TAG], announcement("v1").manifest_uri],
		);
		const dataset = await p.broker.call<{ workspace: string; owner: string }, object>("catalog.get", { kind: "dataset", id: "street-signs" });
		assert.deepEqual([dataset.workspace, dataset.owner], ["wsa", "data-team"]);
		const found = await p.broker.call<{ hits: Array<{ id: string }> }, object>("catalog.search", { text: "street signs", workspaces: ["wsa"] });
		assert.ok(found.hits.some((h) => h.id === version.id), "searchable");
	});

	it("lets a producer publish only to its own source", async () => {
		const errors: string[] = [];
		void (async () => {
			for await (const s of acme.nc.status()) if (s.type === "error") errors.push(String((s as { error?: Error }).error?.message));
		})();
		const other = subjects.ingest("globex", "dataset_version");
		acme.nc.publish(other, JSON.stringify(announcement("forged")));
		acme.nc.publish(subjects.domain("ingest", "dataset_version", "received"), JSON.stringify({ forged: true }));
		await waitFor("two permission violations", () => errors.filter((e) => /permission/i.test(e)).length >= 2, 5_000);
		assert.equal(await stored(STREAMS.ingest.name, other), 0, "nothing stored for another source");
		await assert.rejects(acme.js.publish(other, JSON.stringify(announcement("forged")), { timeout: 1_000 }));
		assert.equal(await stored(STREAMS.ingest.name, other), 0);
	});

	it("of 50 valid and 50 invalid events forwards 50 and dead-letters 50, losing none; a full redelivery adds nothing", async () => {
		const forwardedBefore = await forwarded();
		const deadBefore = (await deadLetters()).length;
		await Promise.all(
			Array.from({ length: 100 }, (_, i) =>
				publish(DATASET_VERSION, JSON.stringify(i % 2 ? announcement(`mix-${i}`) : { ...announcement(`mix-${i}`), bytes: "many" })),
			),
		);
		await waitFor("100 handled", async () => (await forwarded()) === forwardedBefore + 50 && (await deadLetters()).length === deadBefore + 50);
		await waitFor("the gate to settle", settled);
		const bad = (await deadLetters()).slice(deadBefore);
		assert.ok(bad.every((d) => /'bytes' must be integer/.test(d.error)), "each names the field");

		// The consumer lost (an operator deleted it, its store was wiped): the gate binds again and INGEST is
		// delivered again from its start; de-duplication keeps EVENTS and the dead letters as they were.
		await busOf(p.broker).jsm.consumers.delete(STREAMS.ingest.name, INGEST_GATE_DURABLE);
		await waitFor(
			"the whole INGEST stream redelivered",
			async () => {
				try {
					const info = await busOf(p.broker).jsm.consumers.info(STREAMS.ingest.name, INGEST_GATE_DURABLE);
					return info.delivered.stream_seq >= (await busOf(p.broker).jsm.streams.info(STREAMS.ingest.name)).state.last_seq && (await settled());
				} catch {
					return false;
				}
			},
			15_000,
		);
		assert.equal(await forwarded(), forwardedBefore + 50);
		assert.equal((await deadLetters()).length, deadBefore + 50);
	});
});
