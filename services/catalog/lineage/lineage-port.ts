import { createHash } from "node:crypto";

/**
 * The catalog's lineage port: entities and the edges between them, always pointing downstream (the way data
 * flows): dataset → dataset_version → run → model_version → endpoint, model → model_version, and curation
 * derivations dataset_version → dataset_version. Upstream walks edges backwards, downstream forwards.
 */

export const NODE_TYPES = ["dataset", "dataset_version", "run", "model", "model_version", "endpoint"] as const;
export type NodeType = (typeof NODE_TYPES)[number];

export interface LineageNode {
	id: string;
	type: NodeType;
	workspace: string;
	name?: string;
}

export type EdgeKind = "version_of" | "input_to" | "produced" | "deployed_as" | "derived_from";

/** `created_at` / `removed_at` are ISO-8601 instants; they are stored normalized to UTC milliseconds. */
export interface LineageEdge {
	from: string;
	to: string;
	kind: EdgeKind;
	created_at: string;
	removed_at?: string;
}

export interface LineageGraph {
	root: string;
	nodes: LineageNode[];
	edges: LineageEdge[];
	/** true when the depth limit cut off nodes that were further away */
	truncated: boolean;
}

export interface TraversalOptions {
	/** hops from the root, 1..MAX_DEPTH */
	depth: number;
	/** point in time: only edges created at or before it and not removed by then; absent: the current graph */
	at?: string;
	/** only nodes of these workspaces are returned and walked through; absent: every workspace */
	workspaces?: string[];
}

export interface ImpactReport {
	total: number;
	byType: Record<NodeType, number>;
	nodes: LineageNode[];
}

/** An OpenLineage RunEvent (spec 2-0-2), reduced to the fields we fill. */
export interface OpenLineageRunEvent {
	eventType: "COMPLETE";
	eventTime: string;
	producer: string;
	schemaURL: string;
	run: { runId: string };
	job: { namespace: string; name: string };
	inputs: { namespace: string; name: string }[];
	outputs: { namespace: string; name: string }[];
}

export interface LineagePort {
	/** creates or updates an entity; its type cannot change once set */
	upsertNode(n: LineageNode): Promise<void>;
	/** idempotent: the same (from, to, kind) again changes nothing; both ends must exist */
	addEdge(e: LineageEdge): Promise<void>;
	/** marks the edge removed at `at`, keeping it for point-in-time queries */
	removeEdge(from: string, to: string, kind: EdgeKind, at: string): Promise<void>;
	upstream(id: string, opts: TraversalOptions): Promise<LineageGraph>;
	downstream(id: string, opts: TraversalOptions): Promise<LineageGraph>;
	/** what a change of `id` would touch: everything downstream of it */
	impact(id: string, opts: TraversalOptions): Promise<ImpactReport>;
	/** upstream and downstream of `id` in one graph */
	exportJson(id: string, opts: TraversalOptions): Promise<LineageGraph>;
	/** every run in exportJson's graph as a COMPLETE RunEvent with its direct inputs and outputs */
	exportOpenLineage(id: string, opts: TraversalOptions): Promise<OpenLineageRunEvent[]>;
	/**
	 * For a graph that is a view of another store: deletes (history included) every node whose id is not in
	 * `nodes`, with its edges, and every edge whose `edgeKey` is not in `edges` or that is marked removed.
	 */
	prune(nodes: ReadonlySet<string>, edges: ReadonlySet<string>): Promise<void>;
	nodeCount(): Promise<number>;
	close(): Promise<void>;
}

export const MAX_DEPTH = 20;
export const OPENLINEAGE_PRODUCER = "https://savassan.dev";
export const OPENLINEAGE_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent";

export class LineageError extends Error {
	constructor(
		message: string,
		readonly code: "invalid" | "not_found" | "conflict",
	) {
		super(message);
		this.name = "LineageError";
	}
}

/** Which node types each edge kind may join (from → to); anything else is refused at write time. */
const ALLOWED: Record<EdgeKind, [NodeType, NodeType][]> = {
	version_of: [
		["dataset", "dataset_version"],
		["model", "model_version"],
	],
	input_to: [
		["dataset_version", "run"],
		["model_version", "run"], // a base model fine-tuned by the run
	],
	produced: [
		["run", "model_version"],
		["run", "dataset_version"], // e.g. an evaluation or curation output
	],
	deployed_as: [["model_version", "endpoint"]],
	derived_from: [["dataset_version", "dataset_version"]],
};

export function checkNode(n: LineageNode): void {
	if (typeof n.id !== "string" || n.id.length === 0) throw new LineageError("node id must be a non-empty string", "invalid");
	if (!(NODE_TYPES as readonly string[]).includes(n.type)) throw new LineageError(`node ${n.id}: unknown type '${n.type}'`, "invalid");
	if (typeof n.workspace !== "string" || n.workspace.length === 0) throw new LineageError(`node ${n.id}: workspace is required`, "invalid");
}

export function checkEdgeEnds(e: Pick<LineageEdge, "from" | "to" | "kind">, fromType: NodeType | undefined, toType: NodeType | undefined): void {
	if (!(e.kind in ALLOWED)) throw new LineageError(`unknown edge kind '${e.kind}'`, "invalid");
	if (fromType === undefined) throw new LineageError(`edge ${e.from} -${e.kind}-> ${e.to}: unknown node ${e.from}`, "not_found");
	if (toType === undefined) throw new LineageError(`edge ${e.from} -${e.kind}-> ${e.to}: unknown node ${e.to}`, "not_found");
	if (e.from === e.to) throw new LineageError(`edge ${e.from} -${e.kind}-> itself is not allowed`, "invalid");
	if (!ALLOWED[e.kind].some(([f, t]) => f === fromType && t === toType)) {
		throw new LineageError(`edge kind ${e.kind} cannot join a ${fromType} to a ${toType}`, "invalid");
	}
}

/** Normalizes an instant so that string comparison is time comparison (both adapters compare strings). */
export function isoTime(value: string, what: string): string {
	const ms = typeof value === "string" ? Date.parse(value) : NaN;
	if (Number.isNaN(ms)) throw new LineageError(`${what} must be an ISO-8601 time, got ${JSON.stringify(value)}`, "invalid");
	return new Date(ms).toISOString();
}

/** Validated options; the depth is checked before any query since Neo4j inlines it into the Cypher text. */
export interface Traversal {
	depth: number;
	at: string | undefined;
	workspaces: string[] | undefined;
}

export function checkTraversal(opts: TraversalOptions): Traversal {
	const d = opts?.depth;
	if (typeof d !== "number" || !Number.isInteger(d) || d < 1 || d > MAX_DEPTH) {
		throw new LineageError(`depth must be an integer from 1 to ${MAX_DEPTH}, got ${JSON.stringify(d)}`, "invalid");
	}
	if (opts.workspaces !== undefined && !(Array.isArray(opts.workspaces) && opts.workspaces.every((w) => typeof w === "string"))) {
		throw new LineageError("workspaces must be a list of strings", "invalid");
	}
	return { depth: d, at: opts.at === undefined ? undefined : isoTime(opts.at, "at"), workspaces: opts.workspaces };
}

/** Whether an edge exists at `at` (absent: now, i.e. not removed). */
export function edgeLiveAt(e: LineageEdge, at: string | undefined): boolean {
	if (at === undefined) return e.removed_at === undefined;
	return e.created_at <= at && (e.removed_at === undefined || e.removed_at > at);
}

export type Direction = "up" | "down";

/**
 * The parts every adapter shares: impact and exports are built on the adapter's own traversal, so both
 * adapters answer them identically.
 */
export abstract class LineageBase implements LineagePort {
	abstract upsertNode(n: LineageNode): Promise<void>;
	abstract addEdge(e: LineageEdge): Promise<void>;
	abstract removeEdge(from: string, to: string, kind: EdgeKind, at: string): Promise<void>;
	abstract prune(nodes: ReadonlySet<string>, edges: ReadonlySet<string>): Promise<void>;
	abstract nodeCount(): Promise<number>;
	abstract close(): Promise<void>;
	protected abstract traverse(id: string, dir: Direction, t: Traversal): Promise<LineageGraph>;

	async upstream(id: string, opts: TraversalOptions): Promise<LineageGraph> {
		return this.traverse(id, "up", checkTraversal(opts));
	}

	async downstream(id: string, opts: TraversalOptions): Promise<LineageGraph> {
		return this.traverse(id, "down", checkTraversal(opts));
	}

	async impact(id: string, opts: TraversalOptions): Promise<ImpactReport> {
		const g = await this.downstream(id, opts);
		const nodes = g.nodes.filter((n) => n.id !== id);
		const byType = Object.fromEntries(NODE_TYPES.map((t) => [t, 0])) as Record<NodeType, number>;
		for (const n of nodes) byType[n.type]++;
		return { total: nodes.length, byType, nodes };
	}

	async exportJson(id: string, opts: TraversalOptions): Promise<LineageGraph> {
		const t = checkTraversal(opts);
		const [up, down] = await Promise.all([this.traverse(id, "up", t), this.traverse(id, "down", t)]);
		const nodes = new Map<string, LineageNode>();
		const edges = new Map<string, LineageEdge>();
		for (const g of [up, down]) {
			for (const n of g.nodes) nodes.set(n.id, n);
			for (const e of g.edges) edges.set(edgeKey(e.from, e.kind, e.to), e);
		}
		return { root: id, nodes: [...nodes.values()], edges: [...edges.values()], truncated: up.truncated || down.truncated };
	}

	async exportOpenLineage(id: string, opts: TraversalOptions): Promise<OpenLineageRunEvent[]> {
		const t = checkTraversal(opts);
		const g = await this.exportJson(id, opts);
		const runs = g.nodes.filter((n) => n.type === "run");
		// A run's inputs and outputs are its direct neighbours, even those beyond the export's depth.
		const one = { ...t, depth: 1 };
		return Promise.all(
			runs.map(async (run) => {
				const [up, down] = await Promise.all([this.traverse(run.id, "up", one), this.traverse(run.id, "down", one)]);
				const ins = up.edges.filter((e) => e.kind === "input_to");
				const outs = down.edges.filter((e) => e.kind === "produced");
				const byId = new Map([...up.nodes, ...down.nodes].map((n) => [n.id, n]));
				const dataset = (nid: string) => ({ namespace: byId.get(nid)?.workspace ?? run.workspace, name: nid });
				const times = [...ins, ...outs].map((e) => e.created_at).sort();
				return {
					eventType: "COMPLETE" as const,
					eventTime: times.at(-1) ?? t.at ?? new Date().toISOString(),
					producer: OPENLINEAGE_PRODUCER,
					schemaURL: OPENLINEAGE_SCHEMA_URL,
					run: { runId: runUuid(run.id) },
					job: { namespace: run.workspace, name: run.name ?? run.id },
					inputs: ins.map((e) => dataset(e.from)),
					outputs: outs.map((e) => dataset(e.to)),
				};
			}),
		);
	}
}

export function edgeKey(from: string, kind: EdgeKind, to: string): string {
	return `${from}|${kind}|${to}`;
}

/** OpenLineage wants a UUID run id; a name-based one (v5 layout over SHA-1) keeps exports stable. */
export function runUuid(runId: string): string {
	const h = createHash("sha1").update(`savassan:run:${runId}`).digest();
	h[6] = (h[6]! & 0x0f) | 0x50;
	h[8] = (h[8]! & 0x3f) | 0x80;
	const x = h.subarray(0, 16).toString("hex");
	return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
