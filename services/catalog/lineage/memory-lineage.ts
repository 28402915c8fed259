import { MultiDirectedGraph } from "graphology";
import {
	LineageBase,
	LineageError,
	checkEdgeEnds,
	checkNode,
	edgeKey,
	edgeLiveAt,
	isoTime,
	type Direction,
	type EdgeKind,
	type LineageEdge,
	type LineageGraph,
	type LineageNode,
	type Traversal,
} from "./lineage-port";

// Mapped types, so that graphology's attribute constraint (an index signature) accepts them.
type NodeAttrs = Pick<LineageNode, keyof LineageNode>;
type EdgeAttrs = Pick<LineageEdge, keyof LineageEdge>;

/**
 * Embedded lineage on graphology, in-process and not durable: the catalog rebuilds it from its events. A
 * multi graph so that two kinds may join the same pair; the edge key `${from}|${kind}|${to}` makes writes
 * idempotent.
 */
export class MemoryLineage extends LineageBase {
	private readonly g = new MultiDirectedGraph<NodeAttrs, EdgeAttrs>({ allowSelfLoops: false });

	async upsertNode(n: LineageNode): Promise<void> {
		checkNode(n);
		const node: NodeAttrs = { id: n.id, type: n.type, workspace: n.workspace, ...(n.name === undefined ? {} : { name: n.name }) };
		if (!this.g.hasNode(n.id)) {
			this.g.addNode(n.id, node);
			return;
		}
		const old = this.g.getNodeAttributes(n.id);
		// Edges were checked against the type: changing it would leave them invalid.
		if (old.type !== n.type) throw new LineageError(`node ${n.id} is a ${old.type}, not a ${n.type}`, "conflict");
		this.g.replaceNodeAttributes(n.id, node);
	}

	async addEdge(e: LineageEdge): Promise<void> {
		const at = isoTime(e.created_at, "created_at");
		const type = (id: string) => (this.g.hasNode(id) ? this.g.getNodeAttributes(id).type : undefined);
		checkEdgeEnds(e, type(e.from), type(e.to));
		const key = edgeKey(e.from, e.kind, e.to);
		if (this.g.hasEdge(key)) {
			const old = this.g.getEdgeAttributes(key);
			// History is append-only: bringing a removed edge back would rewrite what past queries answered.
			if (old.removed_at !== undefined) throw new LineageError(`edge ${key} was removed at ${old.removed_at}`, "conflict");
			return;
		}
		this.g.addEdgeWithKey(key, e.from, e.to, { from: e.from, to: e.to, kind: e.kind, created_at: at });
	}

	async removeEdge(from: string, to: string, kind: EdgeKind, at: string): Promise<void> {
		const when = isoTime(at, "at");
		const key = edgeKey(from, kind, to);
		if (!this.g.hasEdge(key)) throw new LineageError(`no edge ${key}`, "not_found");
		const e = this.g.getEdgeAttributes(key);
		if (e.removed_at === undefined) this.g.setEdgeAttribute(key, "removed_at", when); // the first removal stands
	}

	async prune(nodes: ReadonlySet<string>, edges: ReadonlySet<string>): Promise<void> {
		for (const id of this.g.nodes()) if (!nodes.has(id)) this.g.dropNode(id);
		for (const key of this.g.edges()) if (!edges.has(key) || this.g.getEdgeAttribute(key, "removed_at") !== undefined) this.g.dropEdge(key);
	}

	protected async traverse(id: string, dir: Direction, t: Traversal): Promise<LineageGraph> {
		if (!this.g.hasNode(id)) throw new LineageError(`unknown node ${id}`, "not_found");
		const ws = t.workspaces && new Set(t.workspaces);
		const rootAttrs = this.g.getNodeAttributes(id);
		if (ws && !ws.has(rootAttrs.workspace)) return { root: id, nodes: [], edges: [], truncated: false };

		// Breadth first, level by level; `seen` keeps each node once, so cycles end.
		const seen = new Set<string>([id]);
		const nodes: LineageNode[] = [{ ...rootAttrs }];
		const edges: LineageEdge[] = [];
		let frontier = [id];
		let truncated = false;
		const walk = dir === "down" ? this.g.forEachOutEdge.bind(this.g) : this.g.forEachInEdge.bind(this.g);
		for (let level = 0; level <= t.depth && frontier.length > 0; level++) {
			const last = level === t.depth;
			const next: string[] = [];
			for (const cur of frontier) {
				walk(cur, (_key, e, source, target, sourceAttrs, targetAttrs) => {
					if (!edgeLiveAt(e, t.at)) return;
					const [other, otherAttrs] = dir === "down" ? [target, targetAttrs] : [source, sourceAttrs];
					if (ws && !ws.has(otherAttrs.workspace)) return;
					if (last) {
						// At the limit only look: a live edge to a node not yet returned means the answer is cut short.
						if (!seen.has(other)) truncated = true;
						return;
					}
					edges.push({ ...e });
					if (seen.has(other)) return;
					seen.add(other);
					nodes.push({ ...otherAttrs });
					next.push(other);
				});
				if (last && truncated) break;
			}
			frontier = next;
		}
		return { root: id, nodes, edges, truncated };
	}

	async nodeCount(): Promise<number> {
		return this.g.order;
	}

	async close(): Promise<void> {
		this.g.clear();
	}
}
