import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import {
	OPENLINEAGE_PRODUCER,
	OPENLINEAGE_SCHEMA_URL,
	type EdgeKind,
	type LineageGraph,
	type LineagePort,
	type NodeType,
} from "../../services/catalog/lineage/lineage-port";

const T0 = "2025-01-01T00:00:00.000Z";
const T1 = "2025-02-01T00:00:00.000Z";
const T2 = "2025-03-01T00:00:00.000Z";
const T3 = "2025-04-01T00:00:00.000Z";
const T4 = "2025-05-01T00:00:00.000Z";

const ids = (g: LineageGraph) => g.nodes.map((n) => n.id).sort();
const edgeIds = (g: LineageGraph) => g.edges.map((e) => `${e.from}|${e.kind}|${e.to}`).sort();

async function node(p: LineagePort, id: string, type: NodeType, workspace = "w1"): Promise<void> {
	await p.upsertNode({ id, type, workspace, name: `${id} name` });
}

async function edge(p: LineagePort, from: string, kind: EdgeKind, to: string, at = T1): Promise<void> {
	await p.addEdge({ from, to, kind, created_at: at });
}

/** ds → dv → run → mv → ep, and model → mv. */
async function chain(p: LineagePort, ws = "w1"): Promise<void> {
	await node(p, "ds", "dataset", ws);
	await node(p, "dv", "dataset_version", ws);
	await node(p, "run", "run", ws);
	await node(p, "model", "model", ws);
	await node(p, "mv", "model_version", ws);
	await node(p, "ep", "endpoint", ws);
	await edge(p, "ds", "version_of", "dv");
	await edge(p, "dv", "input_to", "run");
	await edge(p, "run", "produced", "mv", T2);
	await edge(p, "model", "version_of", "mv");
	await edge(p, "mv", "deployed_as", "ep", T3);
}

/** The behaviour every lineage adapter must have; `make` returns an empty store. */
export function lineageContract(name: string, make: () => Promise<LineagePort>, opts: { skip?: string | false } = {}): void {
	describe(`lineage contract: ${name}`, { skip: opts.skip ?? false }, () => {
		let port: LineagePort | undefined;
		const fresh = async () => (port = await make());
		afterEach(async () => {
			await port?.close();
			port = undefined;
		});

		it("walks the full chain: upstream of the endpoint reaches the dataset, downstream of the dataset the endpoint", async () => {
			const p = await fresh();
			await chain(p);
			const up = await p.upstream("ep", { depth: 5 });
			assert.equal(up.root, "ep");
			assert.deepEqual(ids(up), ["ds", "dv", "ep", "model", "mv", "run"]);
			assert.equal(up.truncated, false);
			assert.deepEqual(edgeIds(up), ["ds|version_of|dv", "dv|input_to|run", "model|version_of|mv", "mv|deployed_as|ep", "run|produced|mv"]);
			const down = await p.downstream("ds", { depth: 5 });
			assert.deepEqual(ids(down), ["ds", "dv", "ep", "mv", "run"]);
			assert.equal(down.truncated, false);
			assert.equal(down.nodes.find((n) => n.id === "run")?.name, "run name");
			assert.equal(await p.nodeCount(), 6);
		});

		it("stops at the depth limit and says so; refuses a depth outside 1..20", async () => {
			const p = await fresh();
			await chain(p);
			const two = await p.downstream("ds", { depth: 2 });
			assert.deepEqual(ids(two), ["ds", "dv", "run"]);
			assert.deepEqual(edgeIds(two), ["ds|version_of|dv", "dv|input_to|run"]);
			assert.equal(two.truncated, true);
			assert.equal((await p.downstream("ds", { depth: 4 })).truncated, false, "exactly deep enough is not truncated");
			for (const depth of [0, 21, 1.5, -1, Number.NaN]) {
				await assert.rejects(p.downstream("ds", { depth }), /depth must be an integer from 1 to 20/);
			}
			await assert.rejects(p.upstream("ep", { depth: "3" as unknown as number }), /depth must be an integer/);
		});

		it("terminates on a cycle with each node once", async () => {
			const p = await fresh();
			for (const id of ["a", "b", "c"]) await node(p, id, "dataset_version");
			await edge(p, "a", "derived_from", "b");
			await edge(p, "b", "derived_from", "c");
			await edge(p, "c", "derived_from", "a");
			for (const g of [await p.downstream("a", { depth: 20 }), await p.upstream("a", { depth: 20 })]) {
				assert.deepEqual(ids(g), ["a", "b", "c"]);
				assert.equal(g.nodes.length, 3);
				assert.deepEqual(edgeIds(g), ["a|derived_from|b", "b|derived_from|c", "c|derived_from|a"]);
				assert.equal(g.truncated, false);
			}
		});

		it("adds an edge once however often it is written, and refuses edges the model does not allow", async () => {
			const p = await fresh();
			await chain(p);
			await edge(p, "dv", "input_to", "run", T0); // again, with another time: changes nothing
			await edge(p, "dv", "input_to", "run", T4);
			await node(p, "run", "run"); // an upsert does not duplicate the node either
			const g = await p.downstream("dv", { depth: 1 });
			assert.deepEqual(edgeIds(g), ["dv|input_to|run"]);
			assert.equal(g.edges[0]!.created_at, T1, "the first write's time stands");
			assert.equal(await p.nodeCount(), 6);
			await assert.rejects(edge(p, "ds", "input_to", "run"), /cannot join a dataset to a run/);
			await assert.rejects(edge(p, "ds", "version_of", "ghost"), /unknown node ghost/);
			await assert.rejects(p.upsertNode({ id: "run", type: "dataset", workspace: "w1" }), /run/);
			await assert.rejects(p.downstream("ghost", { depth: 1 }), /unknown node ghost/);
		});

		it("counts the impact of a change by type", async () => {
			const p = await fresh();
			await node(p, "ds", "dataset");
			for (const id of ["dv1", "dv2"]) await node(p, id, "dataset_version");
			for (const id of ["r1", "r2"]) await node(p, id, "run");
			for (const id of ["mv1", "mv2"]) await node(p, id, "model_version");
			await node(p, "ep1", "endpoint");
			await edge(p, "ds", "version_of", "dv1");
			await edge(p, "ds", "version_of", "dv2");
			await edge(p, "dv1", "derived_from", "dv2");
			await edge(p, "dv1", "input_to", "r1");
			await edge(p, "dv2", "input_to", "r1"); // fan-in: r1 is counted once
			await edge(p, "dv2", "input_to", "r2");
			await edge(p, "r1", "produced", "mv1");
			await edge(p, "r2", "produced", "mv2");
			await edge(p, "mv1", "deployed_as", "ep1");
			const impact = await p.impact("ds", { depth: 10 });
			assert.equal(impact.total, 7);
			assert.deepEqual(impact.byType, { dataset: 0, dataset_version: 2, run: 2, model: 0, model_version: 2, endpoint: 1 });
			assert.deepEqual(impact.nodes.map((n) => n.id).sort(), ["dv1", "dv2", "ep1", "mv1", "mv2", "r1", "r2"]);
			const dv2 = await p.impact("dv2", { depth: 10 });
			assert.deepEqual(dv2.byType, { dataset: 0, dataset_version: 0, run: 2, model: 0, model_version: 2, endpoint: 1 });
		});

		it("answers at a point in time: a removed edge is there before its removal and gone after", async () => {
			const p = await fresh();
			await chain(p);
			await p.removeEdge("dv", "run", "input_to", T3);
			await p.removeEdge("dv", "run", "input_to", T4); // the first removal stands
			const at = async (when?: string) => ids(await p.upstream("run", { depth: 5, ...(when ? { at: when } : {}) }));
			assert.deepEqual(await at(T2), ["ds", "dv", "run"]);
			assert.deepEqual(await at(T1), ["ds", "dv", "run"], "created_at is inclusive");
			assert.deepEqual(await at(T3), ["run"], "removed_at is exclusive");
			assert.deepEqual(await at("2025-06-01T00:00:00Z"), ["run"]);
			assert.deepEqual(await at(T0), ["run"], "not yet created");
			assert.deepEqual(await at(), ["run"], "the current graph");
			// Edges carry their history.
			const old = await p.downstream("dv", { depth: 1, at: T2 });
			assert.deepEqual(old.edges, [{ from: "dv", to: "run", kind: "input_to", created_at: T1, removed_at: T3 }]);
			// Before the deployment, the endpoint has no lineage.
			assert.deepEqual(ids(await p.upstream("ep", { depth: 5, at: T2 })), ["ep"]);
			await assert.rejects(p.removeEdge("dv", "run", "produced", T3), /no edge/);
			await assert.rejects(edge(p, "dv", "input_to", "run"), /was removed/);
			await assert.rejects(p.upstream("run", { depth: 2, at: "yesterday" }), /at must be an ISO-8601 time/);
		});

		it("neither returns nor walks through nodes outside the workspaces asked for", async () => {
			const p = await fresh();
			await node(p, "ds", "dataset", "w1");
			await node(p, "dv", "dataset_version", "w1");
			await node(p, "run", "run", "w2");
			await node(p, "mv", "model_version", "w1"); // in w1, but only reachable through w2's run
			await edge(p, "ds", "version_of", "dv");
			await edge(p, "dv", "input_to", "run");
			await edge(p, "run", "produced", "mv");
			const w1 = await p.downstream("ds", { depth: 5, workspaces: ["w1"] });
			assert.deepEqual(ids(w1), ["ds", "dv"]);
			assert.deepEqual(edgeIds(w1), ["ds|version_of|dv"]);
			assert.equal(w1.truncated, false);
			assert.deepEqual(ids(await p.downstream("ds", { depth: 5, workspaces: ["w1", "w2"] })), ["ds", "dv", "mv", "run"]);
			assert.deepEqual(ids(await p.upstream("mv", { depth: 5, workspaces: ["w1"] })), ["mv"]);
			const outside = await p.downstream("run", { depth: 5, workspaces: ["w1"] });
			assert.deepEqual(outside, { root: "run", nodes: [], edges: [], truncated: false });
		});

		it("exports the JSON graph and OpenLineage run events with the run's inputs and outputs", async () => {
			const p = await fresh();
			await chain(p);
			await node(p, "dv2", "dataset_version");
			await node(p, "base", "model_version");
			await edge(p, "dv2", "input_to", "run");
			await edge(p, "base", "input_to", "run");
			const g = await p.exportJson("run", { depth: 1 });
			assert.equal(g.root, "run");
			assert.deepEqual(ids(g), ["base", "dv", "dv2", "mv", "run"]);
			assert.deepEqual(edgeIds(g), ["base|input_to|run", "dv2|input_to|run", "dv|input_to|run", "run|produced|mv"]);
			assert.equal(g.truncated, true);
			assert.doesNotThrow(() => JSON.parse(JSON.stringify(g)));

			// From the endpoint at depth 3 the run is reached, but its inputs are beyond: the event still lists them.
			const events = await p.exportOpenLineage("ep", { depth: 3 });
			assert.equal(events.length, 1);
			const ev = events[0]!;
			assert.equal(ev.eventType, "COMPLETE");
			assert.equal(ev.producer, OPENLINEAGE_PRODUCER);
			assert.equal(ev.schemaURL, OPENLINEAGE_SCHEMA_URL);
			assert.match(ev.schemaURL, /^https:\/\/openlineage\.io\/spec\//);
			assert.match(ev.run.runId, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
			assert.deepEqual(ev.job, { namespace: "w1", name: "run name" });
			assert.deepEqual(ev.inputs.map((d) => d.name).sort(), ["base", "dv", "dv2"]);
			assert.deepEqual(ev.outputs, [{ namespace: "w1", name: "mv" }]);
			assert.equal(ev.eventTime, T2, "the latest of its edges");
			assert.deepEqual(await p.exportOpenLineage("ep", { depth: 3 }), events, "stable across exports");
			assert.deepEqual(await p.exportOpenLineage("ep", { depth: 1 }), [], "no run within reach");
		});
		it("prunes to the given nodes and edges: stale nodes with their edges, stale and removed edges go", async () => {
			const p = await fresh();
			await chain(p);
			await node(p, "stale", "dataset_version");
			await edge(p, "ds", "version_of", "stale");
			await p.removeEdge("dv", "run", "input_to", T2);
			await p.prune(new Set(["ds", "dv", "run", "model", "mv", "ep"]), new Set(["ds|version_of|dv", "dv|input_to|run", "run|produced|mv", "model|version_of|mv"]));
			assert.equal(await p.nodeCount(), 6);
			assert.deepEqual(edgeIds(await p.downstream("ds", { depth: 5 })), ["ds|version_of|dv"], "the removed edge is gone, not kept as history");
			assert.deepEqual(edgeIds(await p.upstream("mv", { depth: 1 })), ["model|version_of|mv", "run|produced|mv"], "the edges kept are as they were");
			assert.deepEqual(edgeIds(await p.upstream("ep", { depth: 1 })), [], "an edge left out of the set is gone");
			await edge(p, "dv", "input_to", "run", T3);
			assert.deepEqual(edgeIds(await p.downstream("dv", { depth: 1 })), ["dv|input_to|run"], "a pruned edge can be drawn again");
		});
	});
}
