import assert from "node:assert/strict";
import { describe, it } from "node:test";
import neo4j from "neo4j-driver";
import { CONSTRAINT_QUERY, Neo4jLineage, PRUNE_EDGES, PRUNE_NODES, traversalQuery } from "../services/catalog/lineage/neo4j-lineage";
import { FakeNeo4j, type RecordedQuery } from "./support/fake-neo4j";
import { lineageContract } from "./support/lineage-contract";

// Against a real Neo4j only when one is given; each case starts from an empty graph.
const url = process.env.NEO4J_URL;
lineageContract(
	"neo4j",
	async () => {
		const driver = neo4j.driver(url!, neo4j.auth.basic(process.env.NEO4J_USER ?? "neo4j", process.env.NEO4J_PASSWORD ?? ""));
		const database = process.env.NEO4J_DATABASE ?? "neo4j";
		const port = new Neo4jLineage(driver, database);
		await port.start();
		await driver.executeQuery("MATCH (n:Entity) DETACH DELETE n", {}, { database });
		return port;
	},
	{ skip: url ? false : "NEO4J_URL not set" },
);

const ROW = (id: string, type: string, workspace = "w1") => ({ id, type, workspace, name: null });

function setup() {
	const fake = new FakeNeo4j();
	return { fake, port: new Neo4jLineage(fake.driver, "lineage") };
}

describe("neo4j lineage: the requests it sends (fake driver)", () => {
	it("creates the uniqueness constraint once, at start, before anything else", async () => {
		const { fake, port } = setup();
		fake.responder = (q) => (q.query.startsWith("MERGE (n:Entity") ? [{ id: "ds" }] : []);
		await port.start();
		await port.start();
		await port.upsertNode({ id: "ds", type: "dataset", workspace: "w1" });
		assert.equal(fake.queries.length, 2);
		assert.equal(fake.queries[0]!.query, CONSTRAINT_QUERY);
		assert.match(CONSTRAINT_QUERY, /^CREATE CONSTRAINT \w+ IF NOT EXISTS FOR \(n:Entity\) REQUIRE n\.id IS UNIQUE$/);
		assert.deepEqual(fake.queries[0]!.config, { database: "lineage", routing: "WRITE" });
	});

	it("writes nodes with MERGE … SET n += and refuses a change of type", async () => {
		const { fake, port } = setup();
		fake.responder = (q) => (q.query.startsWith("MERGE (n:Entity") ? [{ id: "ds" }] : []);
		await port.upsertNode({ id: "ds", type: "dataset", workspace: "w1", name: "reviews" });
		const [w] = fake.statements;
		assert.match(w!.query, /^MERGE \(n:Entity \{id: \$id\}\)\nON CREATE SET n\.type = \$type\n/);
		assert.match(w!.query, /SET n \+= \$props/);
		assert.deepEqual(w!.params, { id: "ds", type: "dataset", props: { workspace: "w1", name: "reviews" } });
		assert.equal(w!.config.routing, "WRITE");
		fake.responder = () => [];
		await assert.rejects(port.upsertNode({ id: "ds", type: "run", workspace: "w1" }), { name: "LineageError", code: "conflict" });
	});

	it("writes edges with MERGE and ON CREATE SET created_at, after checking the kind fits the node types", async () => {
		const { fake, port } = setup();
		let removed: string | null = null;
		fake.responder = (q) => {
			if (q.query.includes("RETURN n.id AS id, n.type AS type")) return [ROW("dv", "dataset_version"), ROW("run", "run")];
			if (q.query.includes("MERGE (a)-[r:LINEAGE")) return [{ removed_at: removed }];
			return [];
		};
		await port.addEdge({ from: "dv", to: "run", kind: "input_to", created_at: "2025-02-01T01:00:00+01:00" });
		const merge = fake.statements.at(-1)!;
		assert.match(merge.query, /MATCH \(a:Entity \{id: \$from\}\), \(b:Entity \{id: \$to\}\)\nMERGE \(a\)-\[r:LINEAGE \{kind: \$kind\}\]->\(b\)\nON CREATE SET r\.created_at = \$at/);
		assert.deepEqual(merge.params, { from: "dv", to: "run", kind: "input_to", at: "2025-02-01T00:00:00.000Z" }, "time normalized to UTC");

		const before = fake.queries.length;
		await assert.rejects(port.addEdge({ from: "run", to: "dv", kind: "input_to", created_at: "2025-02-01T00:00:00Z" }), /cannot join a run to a dataset_version/);
		assert.equal(fake.queries.length, before + 1, "only the type lookup ran, no MERGE");

		removed = "2025-03-01T00:00:00.000Z";
		await assert.rejects(port.addEdge({ from: "dv", to: "run", kind: "input_to", created_at: "2025-04-01T00:00:00Z" }), /was removed/);
	});

	it("removes an edge by setting removed_at, keeping the first removal", async () => {
		const { fake, port } = setup();
		fake.responder = (q) => (q.query.includes("removed_at = coalesce") ? [{ n: neo4j.int(1) }] : []);
		await port.removeEdge("dv", "run", "input_to", "2025-03-01T00:00:00Z");
		const rm = fake.statements.at(-1)!;
		assert.match(rm.query, /SET r\.removed_at = coalesce\(r\.removed_at, \$at\)/);
		assert.doesNotMatch(rm.query, /DELETE/);
		fake.responder = () => [{ n: neo4j.int(0) }];
		await assert.rejects(port.removeEdge("dv", "run", "produced", "2025-03-01T00:00:00Z"), { code: "not_found" });
	});

	it("inlines the depth as an integer bound (plus one hop to detect truncation), with the time and workspace filters", async () => {
		const { fake, port } = setup();
		fake.responder = (q) => (q.query.startsWith("MATCH (root:Entity") ? [{ root: ROW("ds", "dataset"), node: null, hops: null, paths: [] }] : []);
		await port.downstream("ds", { depth: 3, at: "2025-03-01", workspaces: ["w1", "w2"] });
		await port.upstream("ds", { depth: 20 });
		const [down, up] = fake.statements as [RecordedQuery, RecordedQuery];
		assert.match(down.query, /OPTIONAL MATCH p = \(root\)-\[:LINEAGE\*1\.\.4\]->\(x:Entity\)/);
		assert.match(up.query, /OPTIONAL MATCH p = \(root\)<-\[:LINEAGE\*1\.\.21\]-\(x:Entity\)/);
		assert.match(down.query, /WHERE all\(r IN relationships\(p\) WHERE \(r\.removed_at IS NULL OR \(\$at IS NOT NULL AND r\.removed_at > \$at\)\) AND \(\$at IS NULL OR r\.created_at <= \$at\)\)/);
		assert.match(down.query, /AND \(\$workspaces IS NULL OR all\(n IN nodes\(p\) WHERE n\.workspace IN \$workspaces\)\)/);
		assert.deepEqual(down.params, { id: "ds", depth: 3, at: "2025-03-01T00:00:00.000Z", workspaces: ["w1", "w2"] });
		assert.deepEqual(up.params, { id: "ds", depth: 20, at: null, workspaces: null });
		assert.deepEqual(down.config, { database: "lineage", routing: "READ" });
	});

	it("refuses an invalid depth before sending any query", async () => {
		const { fake, port } = setup();
		for (const depth of [0, 21, 2.5, Number.POSITIVE_INFINITY, "3] DETACH DELETE root //" as unknown as number]) {
			await assert.rejects(port.downstream("ds", { depth }), /depth must be an integer from 1 to 20/);
			await assert.rejects(port.impact("ds", { depth }), /depth must be an integer/);
			await assert.rejects(port.exportOpenLineage("ds", { depth }), /depth must be an integer/);
		}
		assert.equal(fake.queries.length, 0, "not even the constraint");
		assert.throws(() => traversalQuery("down", 21), /depth/);
	});

	it("builds the graph from the rows: nodes once, edges de-duplicated, a node first seen past the depth means truncated", async () => {
		const { fake, port } = setup();
		const e = (from: string, kind: string, to: string) => ({ from, to, kind, created_at: "2025-01-01T00:00:00.000Z", removed_at: null });
		fake.responder = () => [
			{ root: ROW("ds", "dataset"), node: ROW("dv", "dataset_version"), hops: neo4j.int(1), paths: [[e("ds", "version_of", "dv")]] },
			{
				root: ROW("ds", "dataset"),
				node: ROW("run", "run"),
				hops: neo4j.int(2),
				paths: [[e("ds", "version_of", "dv"), e("dv", "input_to", "run")]],
			},
			{ root: ROW("ds", "dataset"), node: ROW("mv", "model_version"), hops: neo4j.int(3), paths: [] },
		];
		const g = await port.downstream("ds", { depth: 2 });
		assert.deepEqual(
			g.nodes.map((n) => n.id),
			["ds", "dv", "run"],
		);
		assert.deepEqual(g.nodes[0], { id: "ds", type: "dataset", workspace: "w1" }, "a null name is dropped");
		assert.deepEqual(
			g.edges.map((x) => `${x.from}|${x.kind}|${x.to}`),
			["ds|version_of|dv", "dv|input_to|run"],
		);
		assert.equal(g.truncated, true);
		fake.responder = () => [];
		await assert.rejects(port.downstream("ghost", { depth: 2 }), { code: "not_found" });
	});

	it("counts nodes from a neo4j Integer and closes the driver it was given", async () => {
		const { fake, port } = setup();
		fake.responder = (q) => (q.query.includes("count(n)") ? [{ n: neo4j.int(100_000) }] : []);
		assert.equal(await port.nodeCount(), 100_000);
		await port.close();
		assert.equal(fake.closed, true);
	});
	it("prunes with two writes: nodes not kept (detached), then edges not kept or removed, matched on from|kind|to", async () => {
		const { fake, port } = setup();
		await port.prune(new Set(["ds", "dv"]), new Set(["ds|version_of|dv"]));
		assert.deepEqual(
			fake.statements.map((q) => [q.query, q.params, q.config.routing]),
			[
				[PRUNE_NODES, { ids: ["ds", "dv"] }, "WRITE"],
				[PRUNE_EDGES, { edges: ["ds|version_of|dv"] }, "WRITE"],
			],
		);
		assert.match(PRUNE_NODES, /WHERE NOT n\.id IN \$ids DETACH DELETE n$/);
		assert.match(PRUNE_EDGES, /r\.removed_at IS NOT NULL OR NOT \(a\.id \+ '\|' \+ r\.kind \+ '\|' \+ b\.id\) IN \$edges\nDELETE r$/);
		assert.equal(fake.closed, false, "the driver stays open");
	});
});
