import { Kvm } from "@nats-io/kv";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AssetRejected, AssetStored, CatalogAliasChanged, CatalogEntityRegistered, RunTransitioned } from "../events/catalog";
import { defineConsumer, type ConsumerDefinition } from "../events/consumers";
import { CurationVersionCreated } from "../events/curation";
import { STREAMS } from "../events/streams";
import { subjects } from "../events/subjects";
import { readAfter } from "../events/stream-reader";
import { busOf } from "../lib/moleculer/bus.middleware";
import { catalogService, type DriftReport } from "../services/catalog/catalog.service";
import type { ImpactReport, LineageGraph } from "../services/catalog/lineage/lineage-port";
import { assetUri } from "../services/catalog/registry/asset-refs";
import { curatedVersionId, folderDataset } from "../services/catalog/registry/curation";
import type { DatasetVersion, Model, RunEntity } from "../services/catalog/registry/entities";
import { openPlatformBlobs } from "../lib/platform-blobs";
import { writeCuratedVersion, type CuratedManifest } from "../services/curation/manifest";
import type { SearchResult } from "../services/catalog/search/search-port";
import { startBroker, testConfig } from "./support/broker";
import { startTestNats, type TestNats } from "./support/nats";
import { waitFor } from "./support/wait";

/**
 * The catalog service end to end on a real nats-server: registrations, runs from execution's events, promotion,
 * search, lineage, workspace isolation, rebuilds, the drift check and a restart that rebuilds the views.
 */

let nats: TestNats;
let broker: ServiceBroker;
let dataDir: string;

const WS = "ws-a";
const ME = { workspace: WS, owner: "ana" };
const RUN_CONSUMER = defineConsumer("catalog", RunTransitioned);
const CURATION_CONSUMER = defineConsumer("catalog", CurationVersionCreated);

function start(): Promise<ServiceBroker> {
	const env = { DATA_DIR: dataDir };
	return startBroker(nats.url, "catalog-1", [catalogService(testConfig(env))], env);
}

/** What the execution service publishes for one transition of run-1 (its run document after the change). */
function transition(to: string, from: string, at: string, msgId: string) {
	const run = { id: "run-1", workspace: WS, status: to, attempt: 1, trace_id: "trace-1", dataset_version: "dsv-2", created_at: "2026-01-01T00:00:00.000Z", metrics: to === "SUCCEEDED" ? { accuracy: 0.93 } : {} };
	return busOf(broker).publisher.publish(RunTransitioned, { run_id: "run-1", workspace: WS, from, to, attempt: 1, at, run }, { msgId, traceId: "trace-1" });
}

async function eventsHandled(consumer: ConsumerDefinition<unknown>, published: number): Promise<void> {
	const { jsm } = busOf(broker);
	await waitFor(`the catalog to handle every ${consumer.event.type} event`, async () => {
		const info = await jsm.consumers.info(STREAMS.events.name, consumer.durable);
		return info.delivered.consumer_seq >= published && info.num_pending === 0 && info.num_ack_pending === 0;
	});
}

/** What the curation service does when a job completes: the manifest into the blob store, then the event. */
async function curated(job: string, dataset: string, versionId: string, classes: Record<string, number>, msgId = `${job}:version`, extra: Partial<CurationVersionCreated> = {}) {
	const counts = { images: 5, annotations: 5, classes: Object.keys(classes).length, removed: 1, files: 7, bytes: 7000 };
	const manifest: CuratedManifest = { version_id: versionId, format: "coco", counts, class_distribution: classes, files: [], removed: [] };
	const blobs = openPlatformBlobs(testConfig({ DATA_DIR: dataDir }).assets);
	const manifestKey = await writeCuratedVersion({ manifest, files: new Map(), problems: [] }, async (key, bytes) => void (await blobs.putBytes(key, bytes)));
	const event: CurationVersionCreated = { job_id: job, workspace: WS, dataset, version_id: versionId, manifest_key: manifestKey, format: "coco", counts, ...extra };
	const { seq } = await busOf(broker).publisher.publish(CurationVersionCreated, event, { msgId, traceId: `trace-${job}` });
	return { event, seq };
}

async function registeredEvents(id: string): Promise<number> {
	const { messages } = await readAfter(busOf(broker).jsm, STREAMS.events.name, CatalogEntityRegistered.subject, 0, 1000);
	return messages.filter((m) => m.json<CatalogEntityRegistered>().id === id).length;
}

const edgesOf = (g: LineageGraph) => g.edges.map((e) => `${e.from}-${e.kind}->${e.to}`).sort();

async function aliasEvents(): Promise<CatalogAliasChanged[]> {
	const { messages } = await readAfter(busOf(broker).jsm, STREAMS.events.name, CatalogAliasChanged.subject, 0, 100);
	return messages.map((m) => m.json<CatalogAliasChanged>());
}

const call = <T>(action: string, params: object) => broker.call<T, object>(`catalog.${action}`, params);

async function rejection(p: Promise<unknown>): Promise<{ code: number; type: string; message: string }> {
	const err = await p.then(
		() => assert.fail("expected a rejection"),
		(e: { code: number; type: string; message: string }) => e,
	);
	return err;
}

/** Search and lineage answers without scores or traversal order, which a rebuild may change. */
async function snapshot() {
	const search = await call<SearchResult>("search", { text: "churn", workspaces: [WS] });
	const up = await call<LineageGraph>("lineage.upstream", { id: "ep-1", depth: 10, workspaces: [WS] });
	const impact = await call<ImpactReport>("lineage.impact", { id: "dsv-1", depth: 10, workspaces: [WS] });
	return {
		hits: search.hits.map((h) => h.id).sort(),
		facets: search.facets,
		up: up.nodes.map((n) => n.id).sort(),
		edges: edgesOf(up),
		impact: impact.byType,
	};
}

describe("catalog service", () => {
	before(async () => {
		dataDir = await mkdtemp(join(tmpdir(), "catalog-test-"));
		nats = await startTestNats();
		broker = await start();
	});

	after(async () => {
		await broker?.stop();
		await nats?.stop();
		await rm(dataDir, { recursive: true, force: true });
	});

	it("registers a dataset and its versions, idempotently; other content for a taken id is a conflict", async () => {
		const ds = { id: "ds-1", name: "Customer churn", columns: ["tenure", "churned"], tags: ["tabular"], ...ME };
		const first = await call<{ created_at: string }>("datasets.register", ds);
		const again = await call<{ created_at: string }>("datasets.register", ds);
		assert.equal(again.created_at, first.created_at, "the same registration returns the stored entity");
		const conflict = await rejection(call("datasets.register", { ...ds, name: "Other" }));
		assert.equal(conflict.code, 409);
		assert.match(conflict.message, /dataset ds-1 is already registered with other content/);

		const v1 = { id: "dsv-1", dataset_id: "ds-1", version: "v1", manifest_uri: "s3://data/churn/v1.json", file_count: 10, bytes: 1000, ...ME };
		await call("datasets.versions.register", v1);
		await call("datasets.versions.register", { ...v1, id: "dsv-2", version: "v2", derived_from: ["dsv-1"], tags: ["curated"], class_distribution: { yes: 40, no: 60 } });
		const taken = await rejection(call("datasets.versions.register", { ...v1, id: "dsv-3" }));
		assert.equal(taken.code, 409);
		assert.match(taken.message, /dataset ds-1 already has a version v1 \(dsv-1\)/);
		const unknown = await rejection(call("datasets.versions.register", { ...v1, id: "dsv-4", version: "v4", derived_from: ["dsv-nope"] }));
		assert.equal(unknown.code, 404);
		assert.equal((await rejection(call("get", { kind: "dataset", id: "nope" }))).code, 404);
	});

	it("keeps the newest copy of a run from execution's events, through a redelivery and a late older event", async () => {
		await transition("QUEUED", "PENDING", "2026-01-01T00:00:01.000Z", "run-1:1:QUEUED");
		await transition("RUNNING", "QUEUED", "2026-01-01T00:00:02.000Z", "run-1:1:RUNNING");
		await transition("SUCCEEDED", "RUNNING", "2026-01-01T00:00:03.000Z", "run-1:1:SUCCEEDED");
		await eventsHandled(RUN_CONSUMER as ConsumerDefinition<unknown>, 3);
		const run = await call<RunEntity>("get", { kind: "run", id: "run-1" });
		assert.equal(run.status, "SUCCEEDED");
		assert.deepEqual(run.metrics, { accuracy: 0.93 });

		// Published again past the de-duplication window (an outbox re-publish), then the RUNNING event once more.
		await transition("SUCCEEDED", "RUNNING", "2026-01-01T00:00:03.000Z", "run-1:1:SUCCEEDED:again");
		await transition("RUNNING", "QUEUED", "2026-01-01T00:00:02.000Z", "run-1:1:RUNNING:late");
		await eventsHandled(RUN_CONSUMER as ConsumerDefinition<unknown>, 5);
		assert.deepEqual(await call("get", { kind: "run", id: "run-1" }), run, "the stored run is unchanged");
	});

	it("registers a model and a version from the run, an endpoint, and promotes the version to prod once", async () => {
		await call("models.register", { id: "m-1", name: "Churn classifier", classes: ["yes", "no"], ...ME });
		const mv = { id: "mv-1", model_id: "m-1", version: 1, source_run_id: "run-1", metrics: { accuracy: 0.93 }, model_card: "Gradient boosting on churn v2", ...ME };
		await call("models.versions.register", mv);
		await call("endpoints.register", { id: "ep-1", name: "churn-api", model_version_id: "mv-1", url: "https://serve.example/churn", ...ME });

		const promotion = { model_id: "m-1", alias: "prod", version_id: "mv-1", actor: "ana", reason: "best accuracy" };
		const model = await call<Model>("models.promote", promotion);
		assert.equal(model.aliases.prod!.version_id, "mv-1");
		await call("models.promote", promotion);
		const events = await aliasEvents();
		assert.equal(events.length, 1, "promoting to where the alias points changes nothing and publishes nothing");
		assert.deepEqual({ ...events[0], at: undefined }, { model_id: "m-1", alias: "prod", op: "promote", to: "mv-1", actor: "ana", reason: "best accuracy", workspace: WS, at: undefined });

		const foreign = await rejection(call("models.promote", { ...promotion, model_id: "m-nope" }));
		assert.equal(foreign.code, 404);
		const badAlias = await rejection(call("models.promote", { ...promotion, alias: "Prod!" }));
		assert.equal(badAlias.code, 422);
	});

	it("finds the promoted version by name and stage, in the caller's workspaces only", async () => {
		const found = await call<SearchResult>("search", { text: "churn classifier", workspaces: [WS], stage: "prod" });
		assert.deepEqual(found.hits.map((h) => h.id), ["mv-1"]);
		assert.equal(found.facets.stage.prod, 1);
		const byType = await call<SearchResult>("search", { text: "churn", workspaces: [WS], types: ["dataset"] });
		assert.deepEqual(byType.hits.map((h) => h.id), ["ds-1"]);
		assert.deepEqual(await call("suggest", { prefix: "chu", workspaces: [WS], types: ["model"] }), { suggestions: ["Churn classifier"] });

		const other = await call<SearchResult>("search", { text: "churn", workspaces: ["ws-b"] });
		assert.equal(other.total, 0);
		const hidden = await call<LineageGraph>("lineage.upstream", { id: "ep-1", depth: 10, workspaces: ["ws-b"] });
		assert.deepEqual(hidden.nodes, []);
	});

	it("traces lineage: the endpoint's upstream reaches the dataset, and v1's impact counts what came from it", async () => {
		const up = await call<LineageGraph>("lineage.upstream", { id: "ep-1", depth: 10, workspaces: [WS] });
		assert.deepEqual(up.nodes.map((n) => n.id).sort(), ["ds-1", "dsv-1", "dsv-2", "ep-1", "m-1", "mv-1", "run-1"]);
		assert.ok(up.edges.some((e) => e.from === "dsv-2" && e.kind === "input_to" && e.to === "run-1"), "the run's dataset version is linked");

		const impact = await call<ImpactReport>("lineage.impact", { id: "dsv-1", depth: 10, workspaces: [WS] });
		assert.equal(impact.total, 4);
		assert.deepEqual(impact.byType, { dataset: 0, dataset_version: 1, run: 1, model: 0, model_version: 1, endpoint: 1 });

		const exported = await call<{ events: { inputs: { name: string }[]; outputs: { name: string }[] }[] }>("lineage.export", { id: "mv-1", depth: 5, workspaces: [WS], format: "openlineage" });
		assert.deepEqual(exported.events.map((e) => [e.inputs.map((i) => i.name), e.outputs.map((o) => o.name)]), [[["dsv-2"], ["mv-1"]]]);
	});

	it("rolls the alias back and records it", async () => {
		await call("models.versions.register", { id: "mv-2", model_id: "m-1", version: 2, source_run_id: "run-1", ...ME });
		await call("models.promote", { model_id: "m-1", alias: "prod", version_id: "mv-2", actor: "ana" });
		const model = await call<Model>("models.rollback", { model_id: "m-1", alias: "prod", actor: "bo", reason: "regression" });
		assert.equal(model.aliases.prod!.version_id, "mv-1");
		assert.deepEqual(model.aliases.prod!.history.map((h) => `${h.op}:${h.from ?? "-"}>${h.to}:${h.actor}`), ["promote:->mv-1:ana", "promote:mv-1>mv-2:ana", "rollback:mv-2>mv-1:bo"]);
		assert.deepEqual((await aliasEvents()).map((e) => `${e.op}>${e.to}`), ["promote>mv-1", "promote>mv-2", "rollback>mv-1"]);
		const prod = await call<SearchResult>("search", { workspaces: [WS], stage: "prod" });
		assert.deepEqual(prod.hits.map((h) => h.id), ["mv-1"], "the stage moved back in search too");
		const nothingLeft = await rejection(call("models.rollback", { model_id: "m-1", alias: "prod", actor: "bo" }));
		assert.equal(nothingLeft.code, 409);
	});

	it("catalogs a curated version as a version of its dataset, derived from its newest registered version; a redelivery changes nothing", async () => {
		await call("datasets.register", { id: "pets", name: "Pets", ...ME });
		await call("datasets.versions.register", { id: "pets-v1", dataset_id: "pets", version: "v1", manifest_uri: "s3://data/pets/v1.json", file_count: 6, bytes: 6000, ...ME });
		const { event } = await curated("job-1", "pets", "a".repeat(64), { tabby: 3, beagle: 2 });
		await eventsHandled(CURATION_CONSUMER as ConsumerDefinition<unknown>, 1);

		const id = curatedVersionId(event, { id: "pets" });
		const version = await call<DatasetVersion>("get", { kind: "dataset_version", id });
		assert.deepEqual(
			{ dataset: version.dataset_id, label: version.version, classes: version.class_distribution, files: version.file_count, bytes: version.bytes, from: version.derived_from, uri: version.manifest_uri },
			{ dataset: "pets", label: "a".repeat(64), classes: { tabby: 3, beagle: 2 }, files: 7, bytes: 7000, from: ["pets-v1"], uri: event.manifest_key },
		);
		const byClass = await call<SearchResult>("search", { text: "beagle", workspaces: [WS] });
		assert.deepEqual(byClass.hits.map((h) => h.id), [id], "its classes are searchable");
		const up = await call<LineageGraph>("lineage.upstream", { id, depth: 2, workspaces: [WS] });
		assert.deepEqual(edgesOf(up), [`pets-v1-derived_from->${id}`, `pets-version_of->${id}`, "pets-version_of->pets-v1"]);

		// A newer registered version, then the same event again past the de-duplication window.
		await call("datasets.versions.register", { id: "pets-v2", dataset_id: "pets", version: "v2", manifest_uri: "s3://data/pets/v2.json", file_count: 6, bytes: 6000, ...ME });
		const again = await curated("job-1", "pets", "a".repeat(64), { tabby: 3, beagle: 2 }, "job-1:version:again");
		await waitFor("the redelivered event to be acknowledged", async () => (await busOf(broker).jsm.consumers.info(STREAMS.events.name, CURATION_CONSUMER.durable)).ack_floor.stream_seq >= again.seq);
		assert.deepEqual(await call("get", { kind: "dataset_version", id }), version, "the stored version is unchanged");
		assert.equal(await registeredEvents(id), 1, "announced once");
		const dead = await readAfter(busOf(broker).jsm, STREAMS.deadLetters.name, subjects.deadLetter(STREAMS.events.name, CURATION_CONSUMER.durable), 0, 10);
		assert.equal(dead.messages.length, 0, "handled, not failed until dead-lettered");
	});

	it("registers a dataset for a curated folder the catalog does not know", async () => {
		const { event } = await curated("job-2", "birds/raw", "b".repeat(64), { finch: 4 });
		await eventsHandled(CURATION_CONSUMER as ConsumerDefinition<unknown>, 3);
		const dataset = folderDataset(event, new Date());
		assert.equal((await call<{ name: string; workspace: string }>("get", { kind: "dataset", id: dataset.id })).name, "birds/raw");
		const version = await call<DatasetVersion>("get", { kind: "dataset_version", id: curatedVersionId(event, dataset) });
		assert.deepEqual([version.dataset_id, version.derived_from, version.class_distribution], [dataset.id, [], { finch: 4 }]);
	});

	it("derives a curated version from the version its job named, with the event's classes and owner", async () => {
		// pets-v2 is the newest registered version now: a guess would pick it.
		const named = { source_version_id: "pets-v1", class_distribution: { tabby: 9, beagle: 1 }, owner: "ann" };
		const { event } = await curated("job-3", "pets", "c".repeat(64), { tabby: 1 }, "job-3:version", named);
		await eventsHandled(CURATION_CONSUMER as ConsumerDefinition<unknown>, 4);
		const version = await call<DatasetVersion>("get", { kind: "dataset_version", id: curatedVersionId(event, { id: "pets" }) });
		assert.deepEqual([version.derived_from, version.class_distribution, version.owner], [["pets-v1"], { tabby: 9, beagle: 1 }, "ann"]);

		// A source in another workspace draws no edge across workspaces.
		await call("datasets.register", { id: "ds-other", name: "Other", workspace: "ws-other", owner: "bo" });
		await call("datasets.versions.register", { id: "other-v1", dataset_id: "ds-other", version: "v1", manifest_uri: "s3://o/v1.json", file_count: 1, bytes: 1, workspace: "ws-other", owner: "bo" });
		const crossing = await curated("job-4", "pets", "d".repeat(64), { tabby: 1 }, "job-4:version", { source_version_id: "other-v1" });
		await eventsHandled(CURATION_CONSUMER as ConsumerDefinition<unknown>, 5);
		const isolated = await call<DatasetVersion>("get", { kind: "dataset_version", id: curatedVersionId(crossing.event, { id: "pets" }) });
		assert.deepEqual(isolated.derived_from, []);
	});

	it("links a run to its dataset version as soon as the version is registered after it", async () => {
		const run = { id: "run-2", workspace: WS, status: "QUEUED", attempt: 1, trace_id: "trace-2", dataset_version: "dsv-late", created_at: "2026-01-03T00:00:00.000Z" };
		await busOf(broker).publisher.publish(RunTransitioned, { run_id: "run-2", workspace: WS, from: "PENDING", to: "QUEUED", attempt: 1, at: "2026-01-03T00:00:01.000Z", run }, { msgId: "run-2:1:QUEUED" });
		await eventsHandled(RUN_CONSUMER as ConsumerDefinition<unknown>, 6);
		await call("datasets.versions.register", { id: "dsv-late", dataset_id: "ds-1", version: "late", manifest_uri: "s3://data/churn/late.json", file_count: 1, bytes: 10, ...ME });
		const down = await call<LineageGraph>("lineage.downstream", { id: "dsv-late", depth: 1, workspaces: [WS] });
		assert.deepEqual(edgesOf(down), ["dsv-late-input_to->run-2"]);
	});

	it("reports an edge missing from the graph as drift, and a rebuild restores it", async () => {
		assert.equal((await call<DriftReport>("check", {})).drift, false);
		const views = (broker.getLocalService("catalog") as unknown as { views: { lineage: { graph: { removeEdge(f: string, t: string, k: string, at: string): Promise<void> } } } }).views;
		await views.lineage.graph.removeEdge("dsv-2", "run-1", "input_to", new Date().toISOString());
		const drift = await call<DriftReport>("check", {});
		assert.equal(drift.drift, true);
		assert.deepEqual(drift.lineage.edges, { missing: ["dsv-2|input_to|run-1"], extra: [] });
		assert.deepEqual([drift.lineage.missing, drift.search.missing], [[], []], "every node is there");
		await call("rebuild", {});
		assert.equal((await call<DriftReport>("check", {})).drift, false, "a rebuild repairs it");
	});

	it("rebuilds to the same answers; the check finds no drift, then drift after a store write its views missed", async () => {
		const before = await snapshot();
		assert.deepEqual(await call("rebuild", {}), { entities: 20 });
		assert.deepEqual(await snapshot(), before);
		const clean = await call<DriftReport>("check", {});
		assert.equal(clean.drift, false);
		assert.equal(clean.store, 20);

		// Views miss a write only when the instance stopped following the store (a follower that died).
		(broker.getLocalService("catalog") as unknown as { changes: { stop(): void } }).changes.stop();
		const kv = await new Kvm(busOf(broker).js).open("catalog");
		const ghost = { id: "ds-ghost", kind: "dataset", name: "Ghost churn data", columns: [], tags: [], created_at: "2026-01-02T00:00:00.000Z", updated_at: "2026-01-02T00:00:00.000Z", ...ME };
		await kv.put("dataset.ds-ghost", JSON.stringify(ghost));
		const drift = await call<DriftReport>("check", {});
		assert.equal(drift.drift, true);
		assert.deepEqual(drift.search.missing, ["ds-ghost"]);
		assert.deepEqual(drift.lineage.missing, ["ds-ghost"]);

		await call("rebuild", {});
		assert.equal((await call<DriftReport>("check", {})).drift, false, "a rebuild repairs it");
	});

	it("after a restart, builds its views from the store", async () => {
		await broker.stop();
		broker = await start();
		const found = await call<SearchResult>("search", { text: "churn classifier", workspaces: [WS], stage: "prod" });
		assert.deepEqual(found.hits.map((h) => h.id), ["mv-1"]);
		const ghost = await call<SearchResult>("search", { text: "ghost", workspaces: [WS] });
		assert.deepEqual(ghost.hits.map((h) => h.id), ["ds-ghost"]);
		assert.equal((await call<DriftReport>("check", {})).drift, false);
	});

	it("an authenticated caller registers as itself, whatever owner the params name", async () => {
		const asEve = <T>(action: string, params: object) => broker.call<T, object>(`catalog.${action}`, params, { meta: { principal: "eve" } });
		const ds = await asEve<{ owner: string }>("datasets.register", { id: "eve-ds", name: "Eve's", workspace: WS, owner: "mallory" });
		assert.equal(ds.owner, "eve");
		assert.equal((await call<{ owner: string }>("datasets.register", { id: "int-ds", name: "Internal", workspace: WS, owner: "svc" })).owner, "svc", "internal calls name their owner");
	});

	it("learns uploaded assets from their events, and holds versions that name one to its stored bytes", async () => {
		const sha = (c: string) => c.repeat(64);
		const { publisher } = busOf(broker);
		const at = "2026-01-04T00:00:00.000Z";
		await publisher.publish(AssetStored, { uid: "a-weights", workspace: WS, name: "model.pt", size: 2048, sha256: sha("a"), content_type: "application/octet-stream", blob_key: `assets/${WS}/a-weights`, at }, { msgId: "a-weights:stored" });
		await publisher.publish(AssetRejected, { uid: "a-bad", workspace: WS, name: "model.pt", reason: "sha256 mismatch: …", at }, { msgId: "a-bad:rejected" });
		const store = () => (broker.getLocalService("catalog") as unknown as { store: { getAsset(ws: string, uid: string): Promise<unknown> } }).store;
		await waitFor("both asset events to be learnt", async () => (await store().getAsset(WS, "a-weights")) !== undefined && (await store().getAsset(WS, "a-bad")) !== undefined);

		const artifact = (uid: string, over: object = {}) => ({ uri: assetUri(WS, uid), path: "model.pt", bytes: 2048, sha256: sha("a"), ...over });
		const version = (id: string, n: number, artifacts: object[]) => call("models.versions.register", { id, model_id: "m-1", version: n, artifacts, ...ME });
		await version("mv-asset-ok", 40, [artifact("a-weights")]);
		const refused = async (id: string, n: number, a: object, why: RegExp) => {
			const err = await rejection(version(id, n, [a]));
			assert.deepEqual([err.code, err.type], [422, "INVALID"]);
			assert.match(err.message, why);
		};
		await refused("mv-asset-1", 41, artifact("a-weights", { sha256: sha("b") }), /says sha256 b+, but asset:\/\/ws-a\/a-weights has a+/);
		await refused("mv-asset-2", 42, artifact("a-weights", { bytes: 1 }), /says 1 bytes, but .* has 2048/);
		await refused("mv-asset-3", 43, artifact("a-bad"), /was rejected: sha256 mismatch/);
		await refused("mv-asset-4", 44, artifact("a-never"), /is not a stored asset/);
		await refused("mv-asset-5", 45, { ...artifact("a-weights"), uri: assetUri("ws-b", "a-weights") }, /belongs to workspace ws-b, not ws-a/);
		const dsv = await rejection(call("datasets.versions.register", { id: "dsv-asset", dataset_id: "ds-1", version: "asset", manifest_uri: assetUri(WS, "a-bad"), file_count: 1, bytes: 1, ...ME }));
		assert.match(dsv.message, /was rejected/);
	});
});
