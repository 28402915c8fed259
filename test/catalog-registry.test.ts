import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RunTransitioned } from "../events/catalog";
import { MemoryLineage } from "../services/catalog/lineage/memory-lineage";
import { aliasesOf, promote, rollback } from "../services/catalog/registry/aliases";
import {
	CatalogError,
	checkEntity,
	newDataset,
	newDatasetVersion,
	newEndpoint,
	newModel,
	newModelVersion,
	type CatalogEntity,
	type Model,
} from "../services/catalog/registry/entities";
import { applyRunEvent, lineageOf, newer, runFromEvent, toSearchDocument } from "../services/catalog/registry/indexing";
import { MemorySearch } from "../services/catalog/search/memory-search";

const T0 = new Date("2026-01-01T00:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);

function catalogError(code: CatalogError["code"], message: RegExp) {
	return (err: unknown) => {
		assert.ok(err instanceof CatalogError, `expected a CatalogError, got ${String(err)}`);
		assert.equal(err.name, "CatalogError");
		assert.equal(err.code, code);
		assert.match(err.message, message);
		return true;
	};
}

const dataset = newDataset({ id: "ds-iris", workspace: "ws", name: "iris", owner: "ana", tags: ["tabular"], columns: ["sepal_length", "species"] }, T0);
const model = newModel({ id: "m-iris", workspace: "ws", name: "iris-classifier", owner: "ana", classes: ["setosa", "versicolor", "virginica"] }, T0);
const otherModel = newModel({ id: "m-other", workspace: "ws", name: "other", owner: "bob" }, T0);
const v1 = newModelVersion({ id: "mv-1", workspace: "ws", owner: "ana", model_id: "m-iris", version: 1 }, model, at(1));
const v2 = newModelVersion({ id: "mv-2", workspace: "ws", owner: "ana", model_id: "m-iris", version: 2 }, model, at(2));
const otherV1 = newModelVersion({ id: "mo-1", workspace: "ws", owner: "bob", model_id: "m-other", version: 1 }, otherModel, at(1));

describe("catalog entities", () => {
	it("builds entities with defaults and times", () => {
		assert.equal(dataset.kind, "dataset");
		assert.equal(dataset.created_at, T0.toISOString());
		assert.deepEqual(dataset.columns, ["sepal_length", "species"]);
		assert.equal(v2.name, "iris-classifier v2");
		assert.deepEqual(v2.metrics, {});
		assert.deepEqual(model.aliases, {});
	});

	it("refuses an empty name, owner or workspace", () => {
		assert.throws(() => newDataset({ id: "d", workspace: "ws", name: "  ", owner: "ana" }, T0), catalogError("invalid", /dataset d: name must be a non-empty string/));
		assert.throws(() => newModel({ id: "m", workspace: "", name: "m", owner: "ana" }, T0), catalogError("invalid", /model m: workspace/));
		assert.throws(() => newModel({ id: "", workspace: "ws", name: "m", owner: "ana" }, T0), catalogError("invalid", /model id/));
	});

	it("refuses an unknown type", () => {
		assert.throws(() => checkEntity({ ...dataset, kind: "notebook" }), catalogError("invalid", /entity ds-iris: unknown type "notebook"/));
		assert.equal(checkEntity(dataset), dataset);
	});

	it("refuses a model version of a missing model or of another workspace", () => {
		assert.throws(
			() => newModelVersion({ id: "mv-x", workspace: "ws", owner: "ana", model_id: "m-nope", version: 1 }, undefined, T0),
			catalogError("not_found", /model m-nope not found/),
		);
		assert.throws(
			() => newModelVersion({ id: "mv-x", workspace: "elsewhere", owner: "ana", model_id: "m-iris", version: 1 }, model, T0),
			catalogError("invalid", /model version mv-x in workspace elsewhere cannot belong to model m-iris of workspace ws/),
		);
		assert.throws(
			() => newModelVersion({ id: "mv-x", workspace: "ws", owner: "ana", model_id: "m-iris", version: 0 }, model, T0),
			catalogError("invalid", /version must be an integer ≥ 1/),
		);
	});

	it("refuses bad dataset version numbers, self-derivation and bad endpoint urls", () => {
		const input = { id: "dsv-x", workspace: "ws", owner: "ana", dataset_id: "ds-iris", version: "v1", manifest_uri: "s3://b/m.json", file_count: 3, bytes: 10 };
		assert.throws(() => newDatasetVersion({ ...input, file_count: -1 }, dataset, T0), catalogError("invalid", /file_count must be a non-negative integer/));
		assert.throws(() => newDatasetVersion({ ...input, derived_from: ["dsv-x"] }, dataset, T0), catalogError("invalid", /derived from itself/));
		assert.throws(() => newDatasetVersion({ ...input, class_distribution: { a: 1.5 } }, dataset, T0), catalogError("invalid", /class_distribution\.a/));
		const ep = { id: "ep-x", workspace: "ws", name: "iris api", owner: "ana", model_version_id: "mv-1" };
		assert.throws(() => newEndpoint({ ...ep, url: "not a url" }, v1, T0), catalogError("invalid", /is not a URL/));
		assert.throws(() => newEndpoint({ ...ep, url: "ftp://x" }, v1, T0), catalogError("invalid", /http or https/));
		assert.throws(() => newEndpoint({ ...ep, url: "https://x" }, undefined, T0), catalogError("not_found", /model version mv-1 not found/));
	});
});

describe("model aliases", () => {
	it("promotes, re-promotes, and rolls back with the full history", () => {
		let m: Model = model;
		const dev = promote(m, "dev", v1, "ana", at(10));
		assert.deepEqual(dev.change, { model_id: "m-iris", alias: "dev", op: "promote", to: "mv-1", actor: "ana", at: at(10).toISOString() });
		m = dev.model;
		m = promote(m, "prod", v1, "ana", at(11)).model;
		const toV2 = promote(m, "prod", v2, "bob", at(12), "better accuracy");
		assert.equal(toV2.change?.from, "mv-1");
		assert.equal(toV2.change?.reason, "better accuracy");
		m = toV2.model;
		assert.equal(m.aliases.prod!.version_id, "mv-2");
		assert.equal(m.updated_at, at(12).toISOString());

		const back = rollback(m, "prod", "carol", at(13));
		m = back.model;
		assert.equal(m.aliases.prod!.version_id, "mv-1");
		assert.deepEqual(back.change, { model_id: "m-iris", alias: "prod", op: "rollback", from: "mv-2", to: "mv-1", actor: "carol", at: at(13).toISOString() });
		assert.deepEqual(
			m.aliases.prod!.history.map((c) => [c.op, c.from, c.to, c.actor]),
			[
				["promote", undefined, "mv-1", "ana"],
				["promote", "mv-1", "mv-2", "bob"],
				["rollback", "mv-2", "mv-1", "carol"],
			],
		);
		assert.equal(m.aliases.dev!.version_id, "mv-1");
		assert.deepEqual(aliasesOf(m, "mv-1"), ["dev", "prod"]);
		// The input documents are untouched.
		assert.deepEqual(model.aliases, {});
		assert.equal(toV2.model.aliases.prod!.version_id, "mv-2");
	});

	it("refuses a rollback with no earlier version, and of an unknown alias", () => {
		const m = promote(model, "prod", v1, "ana", at(1)).model;
		assert.throws(() => rollback(m, "prod", "ana", at(2)), catalogError("conflict", /alias prod of model m-iris has no earlier version/));
		assert.throws(() => rollback(m, "staging", "ana", at(2)), catalogError("not_found", /model m-iris has no alias staging/));
		// Two rollbacks walk back two promotions, then stop.
		let n = promote(promote(m, "prod", v2, "ana", at(3)).model, "prod", v1, "ana", at(4)).model;
		n = rollback(n, "prod", "ana", at(5)).model;
		assert.equal(n.aliases.prod!.version_id, "mv-2");
		n = rollback(n, "prod", "ana", at(6)).model;
		assert.equal(n.aliases.prod!.version_id, "mv-1");
		assert.throws(() => rollback(n, "prod", "ana", at(7)), catalogError("conflict", /no earlier version/));
	});

	it("is idempotent when the alias already points at the version", () => {
		const first = promote(model, "champion", v1, "ana", at(1));
		const again = promote(first.model, "champion", v1, "bob", at(2));
		assert.equal(again.change, null);
		assert.equal(again.model, first.model);
		assert.equal(again.model.aliases.champion!.history.length, 1);
	});

	it("refuses another model's version and bad alias names", () => {
		assert.throws(() => promote(model, "prod", otherV1, "ana", at(1)), catalogError("invalid", /version mo-1 belongs to model m-other, not to m-iris/));
		for (const bad of ["Prod", "1st", "", "a".repeat(33), "with space"]) {
			assert.throws(() => promote(model, bad, v1, "ana", at(1)), catalogError("invalid", /must match/));
		}
		assert.equal(promote(model, "canary_2", v1, "ana", at(1)).model.aliases.canary_2!.version_id, "mv-1");
	});
});

function runEvent(to: string, attempt: number, s: number, patch: Record<string, unknown> = {}): RunTransitioned {
	return {
		run_id: "run-1",
		workspace: "ws",
		from: "?",
		to,
		attempt,
		at: at(s).toISOString(),
		run: {
			id: "run-1",
			workspace: "ws",
			status: to,
			attempt,
			dataset_version: "dsv-2",
			trace_id: "trace-1",
			created_at: T0.toISOString(),
			metrics: {},
			artifacts: [],
			...patch,
		},
	};
}

describe("catalog indexing", () => {
	it("maps a whole chain to search documents and lineage, and both ports accept them", async () => {
		const dsv1 = newDatasetVersion(
			{ id: "dsv-1", workspace: "ws", owner: "ana", dataset_id: "ds-iris", version: "v1", manifest_uri: "s3://b/v1.json", file_count: 150, bytes: 4551, class_distribution: { setosa: 50, versicolor: 50, virginica: 50 } },
			dataset,
			at(1),
		);
		const dsv2 = newDatasetVersion(
			{ id: "dsv-2", workspace: "ws", owner: "ana", dataset_id: "ds-iris", version: "v2", manifest_uri: "s3://b/v2.json", file_count: 100, bytes: 3000, class_distribution: { setosa: 50, virginica: 50 }, derived_from: ["dsv-1"] },
			dataset,
			at(2),
		);
		const run = runFromEvent(runEvent("SUCCEEDED", 1, 3, { metrics: { accuracy: 0.97 } }));
		const mv = newModelVersion(
			{ id: "mv-1", workspace: "ws", owner: "ana", model_id: "m-iris", version: 1, source_run_id: "run-1", metrics: run.metrics, model_card: "# iris" },
			model,
			at(4),
		);
		const promoted = promote(model, "prod", mv, "ana", at(5)).model;
		const ep = newEndpoint({ id: "ep-1", workspace: "ws", name: "iris api", owner: "ana", model_version_id: "mv-1", url: "https://serve.example/iris" }, mv, at(6));
		const chain: CatalogEntity[] = [dataset, dsv1, dsv2, run, promoted, mv, ep];

		assert.deepEqual(toSearchDocument(dataset).fields, ["sepal_length", "species"]);
		assert.deepEqual(toSearchDocument(dsv2).fields, ["setosa", "virginica"]);
		const mvDoc = toSearchDocument(mv, promoted);
		assert.deepEqual(mvDoc.stage, ["prod"]);
		assert.deepEqual(mvDoc.fields, ["setosa", "versicolor", "virginica"]);
		assert.equal(toSearchDocument(mv).stage, undefined);
		assert.throws(() => toSearchDocument(mv, otherModel), catalogError("invalid", /not the model of version mv-1/));

		const graphs = chain.map(lineageOf);
		assert.deepEqual(
			graphs.flatMap((g) => g.edges.map((e) => `${e.from} -${e.kind}-> ${e.to}`)),
			[
				"ds-iris -version_of-> dsv-1",
				"ds-iris -version_of-> dsv-2",
				"dsv-1 -derived_from-> dsv-2",
				"dsv-2 -input_to-> run-1",
				"m-iris -version_of-> mv-1",
				"run-1 -produced-> mv-1",
				"mv-1 -deployed_as-> ep-1",
			],
		);

		const lineage = new MemoryLineage();
		for (const n of graphs.flatMap((g) => g.nodes)) await lineage.upsertNode(n);
		for (const e of graphs.flatMap((g) => g.edges)) await lineage.addEdge(e);
		const up = await lineage.upstream("ep-1", { depth: 10 });
		const reached = new Set(up.nodes.map((n) => n.id));
		for (const id of ["ds-iris", "dsv-1", "dsv-2", "run-1", "m-iris", "mv-1"]) assert.ok(reached.has(id), `upstream of ep-1 reaches ${id}`);
		const impact = await lineage.impact("dsv-1", { depth: 10 });
		assert.equal(impact.byType.endpoint, 1);
		await lineage.close();

		const search = new MemorySearch();
		await search.upsert(chain.map((e) => toSearchDocument(e, e.kind === "model_version" ? promoted : undefined)));
		const byStage = await search.search({ text: "iris", stage: "prod", workspaces: ["ws"], limit: 10, offset: 0 });
		assert.deepEqual(byStage.hits.map((h) => [h.id, h.type]), [["mv-1", "model_version"]]);
		const byColumn = await search.search({ text: "species", workspaces: ["ws"], limit: 10, offset: 0 });
		assert.equal(byColumn.hits[0]?.id, "ds-iris");
		const byClass = await search.search({ text: "versicolor", types: ["model"], workspaces: ["ws"], limit: 10, offset: 0 });
		assert.deepEqual(byClass.hits.map((h) => h.id), ["m-iris"]);
		await search.close();
	});

	it("builds the run from an event, the same twice", () => {
		const e = runEvent("FAILED", 2, 9, { failure_reason: "runtime_failure", metrics: { loss: 0.4, bad: "x" }, artifacts: [{ uri: "file:///c", path: "c", bytes: 1, sha256: "00" }, 7] });
		const r = runFromEvent(e);
		assert.equal(r.status, "FAILED");
		assert.equal(r.attempt, 2);
		assert.equal(r.trace_id, "trace-1");
		assert.equal(r.dataset_version, "dsv-2");
		assert.equal(r.failure_reason, "runtime_failure");
		assert.deepEqual(r.metrics, { loss: 0.4 });
		assert.equal(r.artifacts.length, 1);
		assert.deepEqual(runFromEvent(e), r);
		assert.equal(applyRunEvent(r, e), r);
		assert.throws(() => runFromEvent({ ...e, to: "EXPLODED" }), catalogError("invalid", /unknown status "EXPLODED"/));
		assert.throws(() => runFromEvent({ ...e, run: { ...e.run, id: "run-2" } }), catalogError("invalid", /the document is run "run-2"/));
	});

	it("ends with the newest state whatever the order of the events", () => {
		const events = [
			runEvent("QUEUED", 1, 1),
			runEvent("RUNNING", 1, 2),
			runEvent("QUEUED", 2, 3), // automatic retry: a new attempt
			runEvent("RUNNING", 2, 4),
			runEvent("SUCCEEDED", 2, 4, { metrics: { accuracy: 0.9 } }), // same instant as RUNNING: the further status wins
		];
		const orders = [events, [...events].reverse(), [events[4]!, events[0]!, events[2]!, events[1]!, events[3]!, events[4]!]];
		for (const order of orders) {
			const final = order.reduce<ReturnType<typeof runFromEvent> | undefined>((cur, e) => applyRunEvent(cur, e), undefined)!;
			assert.equal(final.status, "SUCCEEDED");
			assert.equal(final.attempt, 2);
			assert.deepEqual(final.metrics, { accuracy: 0.9 });
		}
		// A later attempt beats an earlier one even with an older clock; a later time beats within an attempt.
		const a1 = runFromEvent(runEvent("FAILED", 1, 50));
		const a2 = runFromEvent(runEvent("QUEUED", 2, 40));
		assert.equal(newer(a1, a2), a2);
		assert.equal(newer(a2, a1), a2);
		assert.throws(() => newer(a1, { ...a2, id: "run-9" }), catalogError("conflict", /cannot compare run run-1 with run run-9/));
	});
});
