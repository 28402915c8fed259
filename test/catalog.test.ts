import { Kvm } from "@nats-io/kv";
import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CatalogAliasChanged, RunTransitioned } from "../events/catalog";
import { defineConsumer } from "../events/consumers";
import { STREAMS } from "../events/streams";
import { readAfter } from "../events/stream-reader";
import { busOf } from "../lib/moleculer/bus.middleware";
import { catalogService, type DriftReport } from "../services/catalog/catalog.service";
import type { ImpactReport, LineageGraph } from "../services/catalog/lineage/lineage-port";
import type { Model, RunEntity } from "../services/catalog/registry/entities";
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

const WS = "ws-a";
const ME = { workspace: WS, owner: "ana" };
const RUN_CONSUMER = defineConsumer("catalog", RunTransitioned).durable;

function start(): Promise<ServiceBroker> {
	return startBroker(nats.url, "catalog-1", [catalogService(testConfig())]);
}

/** What the execution service publishes for one transition of run-1 (its run document after the change). */
function transition(to: string, from: string, at: string, msgId: string) {
	const run = { id: "run-1", workspace: WS, status: to, attempt: 1, trace_id: "trace-1", dataset_version: "dsv-2", created_at: "2026-01-01T00:00:00.000Z", metrics: to === "SUCCEEDED" ? { accuracy: 0.93 } : {} };
	return busOf(broker).publisher.publish(RunTransitioned, { run_id: "run-1", workspace: WS, from, to, attempt: 1, at, run }, { msgId, traceId: "trace-1" });
}

async function runEventsHandled(published: number): Promise<void> {
	const { jsm } = busOf(broker);
	await waitFor("the catalog to handle every run event", async () => {
		const info = await jsm.consumers.info(STREAMS.events.name, RUN_CONSUMER);
		return info.delivered.consumer_seq >= published && info.num_pending === 0 && info.num_ack_pending === 0;
	});
}

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
		edges: up.edges.map((e) => `${e.from}-${e.kind}->${e.to}`).sort(),
		impact: impact.byType,
	};
}

describe("catalog service", () => {
	before(async () => {
		nats = await startTestNats();
		broker = await start();
	});

	after(async () => {
		await broker?.stop();
		await nats?.stop();
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
		await runEventsHandled(3);
		const run = await call<RunEntity>("get", { kind: "run", id: "run-1" });
		assert.equal(run.status, "SUCCEEDED");
		assert.deepEqual(run.metrics, { accuracy: 0.93 });

		// Published again past the de-duplication window (an outbox re-publish), then the RUNNING event once more.
		await transition("SUCCEEDED", "RUNNING", "2026-01-01T00:00:03.000Z", "run-1:1:SUCCEEDED:again");
		await transition("RUNNING", "QUEUED", "2026-01-01T00:00:02.000Z", "run-1:1:RUNNING:late");
		await runEventsHandled(5);
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
		assert.deepEqual({ ...events[0], at: undefined }, { model_id: "m-1", alias: "prod", op: "promote", to: "mv-1", actor: "ana", reason: "best accuracy", at: undefined });

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

	it("rebuilds to the same answers; the check finds no drift, then drift after a store write behind its back", async () => {
		const before = await snapshot();
		assert.deepEqual(await call("rebuild", {}), { entities: 8 });
		assert.deepEqual(await snapshot(), before);
		const clean = await call<DriftReport>("check", {});
		assert.equal(clean.drift, false);
		assert.equal(clean.store, 8);

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
});
