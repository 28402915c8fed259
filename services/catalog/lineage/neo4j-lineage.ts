import { isInt, routing, type Driver } from "neo4j-driver";
import {
	LineageBase,
	LineageError,
	MAX_DEPTH,
	checkEdgeEnds,
	checkNode,
	edgeKey,
	isoTime,
	type Direction,
	type EdgeKind,
	type LineageEdge,
	type LineageGraph,
	type LineageNode,
	type NodeType,
	type Traversal,
} from "./lineage-port";

/** One label for every entity, so a single uniqueness constraint covers all ids. */
export const CONSTRAINT_QUERY = "CREATE CONSTRAINT lineage_entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE";

const UPSERT_NODE = `MERGE (n:Entity {id: $id})
ON CREATE SET n.type = $type
WITH n WHERE n.type = $type
SET n += $props
RETURN n.id AS id`;

const NODE_TYPES_OF = "MATCH (n:Entity) WHERE n.id IN [$from, $to] RETURN n.id AS id, n.type AS type";

// MERGE on bound nodes: Neo4j locks both ends, so concurrent writers of the same edge create it once.
const MERGE_EDGE = `MATCH (a:Entity {id: $from}), (b:Entity {id: $to})
MERGE (a)-[r:LINEAGE {kind: $kind}]->(b)
ON CREATE SET r.created_at = $at
RETURN r.removed_at AS removed_at`;

const REMOVE_EDGE = `MATCH (:Entity {id: $from})-[r:LINEAGE {kind: $kind}]->(:Entity {id: $to})
SET r.removed_at = coalesce(r.removed_at, $at)
RETURN count(r) AS n`;

export const PRUNE_NODES = "MATCH (n:Entity) WHERE NOT n.id IN $ids DETACH DELETE n";

export const PRUNE_EDGES = `MATCH (a:Entity)-[r:LINEAGE]->(b:Entity)
WHERE r.removed_at IS NOT NULL OR NOT (a.id + '|' + r.kind + '|' + b.id) IN $edges
DELETE r`;

const NODE_COUNT = "MATCH (n:Entity) RETURN count(n) AS n";

/**
 * Cypher cannot take a variable-length bound as a parameter, so the bound is written into the text; it is
 * only ever built from a depth checked to be an integer in 1..MAX_DEPTH. The walk goes one hop past the depth:
 * a node first reached there means the answer was cut short.
 */
export function traversalQuery(dir: Direction, depth: number): string {
	if (!Number.isInteger(depth) || depth < 1 || depth > MAX_DEPTH) throw new LineageError(`depth must be an integer from 1 to ${MAX_DEPTH}`, "invalid");
	const hop = dir === "down" ? `-[:LINEAGE*1..${depth + 1}]->` : `<-[:LINEAGE*1..${depth + 1}]-`;
	return `MATCH (root:Entity {id: $id})
OPTIONAL MATCH p = (root)${hop}(x:Entity)
WHERE all(r IN relationships(p) WHERE (r.removed_at IS NULL OR ($at IS NOT NULL AND r.removed_at > $at)) AND ($at IS NULL OR r.created_at <= $at))
  AND ($workspaces IS NULL OR all(n IN nodes(p) WHERE n.workspace IN $workspaces))
WITH root, x, min(length(p)) AS hops,
  collect(CASE WHEN length(p) <= $depth THEN [r IN relationships(p) | {\`from\`: startNode(r).id, \`to\`: endNode(r).id, kind: r.kind, created_at: r.created_at, removed_at: r.removed_at}] END) AS paths
RETURN root {.id, .type, .workspace, .name} AS root, x {.id, .type, .workspace, .name} AS node, hops, paths`;
}

function toNumber(v: unknown): number {
	return isInt(v) ? v.toNumber() : Number(v);
}

function toNode(m: Record<string, unknown>): LineageNode {
	const n: LineageNode = { id: String(m.id), type: m.type as NodeType, workspace: String(m.workspace) };
	if (m.name !== null && m.name !== undefined) n.name = String(m.name);
	return n;
}

function toEdge(m: Record<string, unknown>): LineageEdge {
	const e: LineageEdge = { from: String(m.from), to: String(m.to), kind: m.kind as EdgeKind, created_at: String(m.created_at) };
	if (m.removed_at !== null && m.removed_at !== undefined) e.removed_at = String(m.removed_at);
	return e;
}

/** Lineage in Neo4j. It owns the driver it is given: close() closes it. */
export class Neo4jLineage extends LineageBase {
	private started?: Promise<void>;

	constructor(
		private readonly driver: Driver,
		private readonly database: string,
	) {
		super();
	}

	/** Creates the uniqueness constraint (idempotent); every operation waits for it. */
	start(): Promise<void> {
		this.started ??= this.run(CONSTRAINT_QUERY, {}, "write").then(
			() => undefined,
			(err: unknown) => {
				this.started = undefined; // let the next call try again
				throw err;
			},
		);
		return this.started;
	}

	private async run(query: string, params: Record<string, unknown>, mode: "read" | "write") {
		const res = await this.driver.executeQuery(query, params, {
			database: this.database,
			routing: mode === "read" ? routing.READ : routing.WRITE,
		});
		return res.records;
	}

	private async query(query: string, params: Record<string, unknown>, mode: "read" | "write") {
		await this.start();
		return this.run(query, params, mode);
	}

	async upsertNode(n: LineageNode): Promise<void> {
		checkNode(n);
		const props = { workspace: n.workspace, name: n.name ?? null }; // null removes a former name
		const rows = await this.query(UPSERT_NODE, { id: n.id, type: n.type, props }, "write");
		// No row: the node exists with another type (edges were checked against it).
		if (rows.length === 0) throw new LineageError(`node ${n.id} exists with another type than ${n.type}`, "conflict");
	}

	async addEdge(e: LineageEdge): Promise<void> {
		const at = isoTime(e.created_at, "created_at");
		const rows = await this.query(NODE_TYPES_OF, { from: e.from, to: e.to }, "read");
		const types = new Map(rows.map((r) => [String(r.get("id")), r.get("type") as NodeType]));
		checkEdgeEnds(e, types.get(e.from), types.get(e.to));
		const merged = await this.query(MERGE_EDGE, { from: e.from, to: e.to, kind: e.kind, at }, "write");
		if (merged.length === 0) throw new LineageError(`edge ${edgeKey(e.from, e.kind, e.to)}: a node disappeared`, "not_found");
		const removed = merged[0]!.get("removed_at");
		// History is append-only: bringing a removed edge back would rewrite what past queries answered.
		if (removed !== null && removed !== undefined) throw new LineageError(`edge ${edgeKey(e.from, e.kind, e.to)} was removed at ${removed}`, "conflict");
	}

	async removeEdge(from: string, to: string, kind: EdgeKind, at: string): Promise<void> {
		const rows = await this.query(REMOVE_EDGE, { from, to, kind, at: isoTime(at, "at") }, "write");
		if (rows.length === 0 || toNumber(rows[0]!.get("n")) === 0) throw new LineageError(`no edge ${edgeKey(from, kind, to)}`, "not_found");
	}

	async prune(nodes: ReadonlySet<string>, edges: ReadonlySet<string>): Promise<void> {
		await this.query(PRUNE_NODES, { ids: [...nodes] }, "write");
		await this.query(PRUNE_EDGES, { edges: [...edges] }, "write");
	}

	protected async traverse(id: string, dir: Direction, t: Traversal): Promise<LineageGraph> {
		const q = traversalQuery(dir, t.depth);
		const rows = await this.query(q, { id, depth: t.depth, at: t.at ?? null, workspaces: t.workspaces ?? null }, "read");
		if (rows.length === 0) throw new LineageError(`unknown node ${id}`, "not_found");
		const root = toNode(rows[0]!.get("root") as Record<string, unknown>);
		if (t.workspaces && !t.workspaces.includes(root.workspace)) return { root: id, nodes: [], edges: [], truncated: false };
		const nodes: LineageNode[] = [root];
		const edges = new Map<string, LineageEdge>();
		let truncated = false;
		for (const r of rows) {
			const node = r.get("node") as Record<string, unknown> | null;
			if (node === null) continue; // no path at all
			if (node.id !== id) {
				// The root may come back through a cycle: its closing edges count, the root itself once.
				if (toNumber(r.get("hops")) > t.depth) {
					truncated = true;
					continue;
				}
				nodes.push(toNode(node));
			}
			for (const path of r.get("paths") as Record<string, unknown>[][]) {
				for (const m of path) {
					const e = toEdge(m);
					edges.set(edgeKey(e.from, e.kind, e.to), e);
				}
			}
		}
		return { root: id, nodes, edges: [...edges.values()], truncated };
	}

	async nodeCount(): Promise<number> {
		const rows = await this.query(NODE_COUNT, {}, "read");
		return toNumber(rows[0]?.get("n") ?? 0);
	}

	async close(): Promise<void> {
		await this.driver.close();
	}
}
