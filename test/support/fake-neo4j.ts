import type { Driver } from "neo4j-driver";

export interface RecordedQuery {
	query: string;
	params: Record<string, unknown>;
	config: { database?: string; routing?: string };
}

/** Answers a query with rows (plain objects, read with `get(key)` like neo4j records). */
export type Responder = (q: RecordedQuery) => Record<string, unknown>[];

/**
 * A stand-in for neo4j-driver's Driver that records every Cypher statement, its parameters and config, and
 * answers from a responder; it implements only what the adapter calls (executeQuery, close).
 */
export class FakeNeo4j {
	readonly queries: RecordedQuery[] = [];
	closed = false;
	responder: Responder = () => [];

	get driver(): Driver {
		return this as unknown as Driver;
	}

	async executeQuery(query: string, params: Record<string, unknown> = {}, config: RecordedQuery["config"] = {}) {
		const q = { query, params, config };
		this.queries.push(q);
		const rows = this.responder(q);
		return { keys: Object.keys(rows[0] ?? {}), records: rows.map((r) => ({ get: (k: string) => r[k], toObject: () => r })), summary: {} };
	}

	async close(): Promise<void> {
		this.closed = true;
	}

	/** The statements after the constraint, in order. */
	get statements(): RecordedQuery[] {
		return this.queries.filter((q) => !q.query.startsWith("CREATE CONSTRAINT"));
	}
}
