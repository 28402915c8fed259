import type { EdgeKind, LineageEdge, LineageNode, NodeType } from "../services/catalog/lineage/lineage-port";
import { ENTITY_TYPES, type SearchDocument } from "../services/catalog/search/search-port";

/** Generated catalogs for catalog.bench: deterministic, so a slow round can be replayed on the same data. */

// 8,000 made-up words (syllable triples), so a term matches tens of documents as in a real catalog, not half of it.
const SYLLABLES = ["res", "net", "ber", "vi", "sion", "ta", "bu", "lar", "sal", "chur", "fra", "ud", "ima", "ges", "spe", "ech", "for", "cast", "yo", "lo"];
const WORDS = SYLLABLES.flatMap((a) => SYLLABLES.flatMap((b) => SYLLABLES.map((c) => a + b + c)));
export const pick = (i: number, salt: number) => WORDS[(i * 7919 + salt * 104729) % WORDS.length]!;
/** Broad words, each in a quarter of the documents: the expensive case. */
export const COMMON = ["vision", "tabular", "speech", "forecast"];

export function searchDocuments(n: number): SearchDocument[] {
	return Array.from({ length: n }, (_, i) => ({
		id: `doc-${i}`,
		type: ENTITY_TYPES[i % ENTITY_TYPES.length]!,
		workspace: `ws-${i % 20}`,
		name: `${pick(i, 1)}-${pick(i, 2)}-${i}`,
		description: `${pick(i, 3)} model trained on ${pick(i, 4)} data for ${pick(i, 5)}`,
		tags: [pick(i, 6), COMMON[i % COMMON.length]!],
		owner: `user-${i % 50}`,
		stage: i % 4 === 0 ? ["production"] : undefined,
		fields: [pick(i, 8), pick(i, 9), `col_${i % 100}`],
		updated_at: new Date(1_700_000_000_000 + i * 1000).toISOString(),
	}));
}

export function mulberry32(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/**
 * A 100,000-node lineage graph shaped like a busy platform: datasets with versions and derivations, a few popular
 * versions feeding many runs, fine-tunes of earlier models, models with versions, endpoints.
 */
export function lineageGraph(seed = 42): { nodes: LineageNode[]; edges: LineageEdge[] } {
	const rand = mulberry32(seed);
	const int = (n: number) => Math.floor(rand() * n);
	const popular = (n: number) => Math.floor(n * rand() * rand());
	const counts: [NodeType, string, number][] = [
		["dataset", "ds", 6_000],
		["dataset_version", "dv", 24_000],
		["run", "run", 30_000],
		["model", "m", 3_000],
		["model_version", "mv", 30_000],
		["endpoint", "ep", 7_000],
	];
	const nodes: LineageNode[] = [];
	for (const [type, prefix, n] of counts) for (let i = 0; i < n; i++) nodes.push({ id: `${prefix}${i}`, type, workspace: `w${i % 20}` });
	const edges: LineageEdge[] = [];
	const add = (from: string, kind: EdgeKind, to: string) => edges.push({ from, to, kind, created_at: "2025-01-01T00:00:00.000Z" });
	for (let i = 0; i < 24_000; i++) add(`ds${Math.floor(i / 4)}`, "version_of", `dv${i}`);
	for (let i = 100; i < 24_000; i++) if (rand() < 0.25) add(`dv${popular(i)}`, "derived_from", `dv${i}`);
	for (let i = 0; i < 30_000; i++) {
		for (const d of new Set(Array.from({ length: 1 + int(4) }, () => popular(24_000)))) add(`dv${d}`, "input_to", `run${i}`);
		if (i > 0 && rand() < 0.1) add(`mv${int(i)}`, "input_to", `run${i}`);
		add(`run${i}`, "produced", `mv${i}`);
		add(`m${i % 3_000}`, "version_of", `mv${i}`);
	}
	for (let i = 0; i < 7_000; i++) add(`mv${int(30_000)}`, "deployed_as", `ep${i}`);
	return { nodes, edges };
}
