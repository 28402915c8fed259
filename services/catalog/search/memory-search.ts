/**
 * The embedded search adapter: a MiniSearch index in this process. Suited to one catalog instance and up to a
 * few hundred thousand documents; the index lives in memory and is rebuilt from the registry at start.
 */
import MiniSearch, { type SearchResult as MiniResult } from "minisearch";
import {
	BOOSTS,
	emptyFacets,
	emptyResult,
	type FacetName,
	type SearchDocument,
	type SearchHit,
	type SearchPort,
	type SearchQuery,
	type SearchResult,
	type SuggestOptions,
} from "./search-port";

const TEXT_FIELDS = ["name", "description", "tags", "fields"] as const;
const HIGHLIGHTED = ["name", "description", "fields"] as const;
/** MiniSearch's own tokenizer splits on these; highlighting must cut words the same way. */
const WORD = /[^\n\r\p{Z}\p{P}]+/gu;
const FRAGMENT_CHARS = 150;

type Op = { upsert: SearchDocument[] } | { remove: string[] };

/** One generation of the index: replaced as a whole by `rebuild`, so readers never see a half-built one. */
class Generation {
	readonly docs = new Map<string, SearchDocument>();
	readonly index = new MiniSearch<SearchDocument>({
		fields: [...TEXT_FIELDS],
		// Arrays are indexed as words; missing optional fields as nothing.
		extractField: (doc, field) => {
			const v = (doc as unknown as Record<string, unknown>)[field];
			return Array.isArray(v) ? v.join(" ") : v;
		},
	});

	upsert(docs: SearchDocument[]): void {
		for (const doc of docs) {
			if (this.docs.has(doc.id)) this.index.discard(doc.id);
			this.docs.set(doc.id, doc);
			this.index.add(doc);
		}
	}

	remove(ids: string[]): void {
		for (const id of ids) {
			if (!this.docs.delete(id)) continue;
			this.index.discard(id);
		}
	}
}

function escapeHtml(s: string): string {
	return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `text` with every word in `terms` wrapped in <em>, or undefined when none is. */
function mark(text: string, terms: Set<string>): string | undefined {
	let hit = -1;
	let out = "";
	let last = 0;
	for (const m of text.matchAll(WORD)) {
		if (!terms.has(m[0].toLowerCase())) continue;
		if (hit < 0) hit = m.index;
		out += escapeHtml(text.slice(last, m.index)) + `<em>${escapeHtml(m[0])}</em>`;
		last = m.index + m[0].length;
	}
	if (hit < 0) return undefined;
	out += escapeHtml(text.slice(last));
	if (text.length <= FRAGMENT_CHARS) return out;
	// A long description: a window starting shortly before the first match (re-marked, so no tag is cut).
	const start = Math.max(0, hit - 40);
	const window = text.slice(start, start + FRAGMENT_CHARS);
	return (start > 0 ? "…" : "") + (mark(window, terms) ?? escapeHtml(window)) + "…";
}

function highlights(doc: SearchDocument, r: MiniResult): Record<string, string[]> {
	// r.terms are the document's words that matched (after prefix/fuzzy expansion), lower-cased.
	const terms = new Set(r.terms);
	const out: Record<string, string[]> = {};
	for (const field of HIGHLIGHTED) {
		const v = doc[field];
		const values = Array.isArray(v) ? v : v ? [v] : [];
		const fragments = values.map((s) => mark(s, terms)).filter((s): s is string => s !== undefined);
		if (fragments.length) out[field] = fragments;
	}
	return out;
}

function countFacets(docs: SearchDocument[]): SearchResult["facets"] {
	const facets = emptyFacets();
	const add = (name: FacetName, value: string | undefined) => {
		if (value !== undefined) facets[name][value] = (facets[name][value] ?? 0) + 1;
	};
	for (const d of docs) {
		add("type", d.type);
		add("workspace", d.workspace);
		add("owner", d.owner);
		for (const s of new Set(d.stage)) add("stage", s);
		for (const t of new Set(d.tags)) add("tags", t);
	}
	return facets;
}

export class MemorySearch implements SearchPort {
	private current = new Generation();
	/** Writes made while a rebuild loads, replayed onto the new generation before it is swapped in. */
	private pendingOps: Op[] | null = null;
	private rebuilding: Promise<void> = Promise.resolve();

	async upsert(docs: SearchDocument[]): Promise<void> {
		// The last version of an id within one batch wins, as it would one call at a time.
		const unique = [...new Map(docs.map((d) => [d.id, d])).values()];
		this.current.upsert(unique);
		this.pendingOps?.push({ upsert: unique });
	}

	async remove(ids: string[]): Promise<void> {
		this.current.remove(ids);
		this.pendingOps?.push({ remove: [...ids] });
	}

	async search(q: SearchQuery): Promise<SearchResult> {
		const visible = new Set(q.workspaces);
		if (visible.size === 0) return emptyResult(); // deny by default
		const { docs, index } = this.current;
		const types = q.types?.length ? new Set<string>(q.types) : undefined;
		const tags = q.tags ?? [];
		const keep = (d: SearchDocument | undefined): d is SearchDocument =>
			d !== undefined &&
			visible.has(d.workspace) &&
			(!types || types.has(d.type)) &&
			(q.owner === undefined || d.owner === q.owner) &&
			(q.stage === undefined || (d.stage ?? []).includes(q.stage)) &&
			tags.every((t) => d.tags.includes(t));
		const text = q.text?.trim();
		const results = index.search(text ? text : MiniSearch.wildcard, {
			boost: { ...BOOSTS },
			fuzzy: q.fuzzy === false ? false : 0.2,
			// The filter runs inside MiniSearch, so a hidden workspace never reaches scoring, totals or facets.
			filter: (r) => keep(docs.get(r.id)),
		});
		// Score, then id: MiniSearch leaves ties in index order, which would make pages unstable.
		results.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
		const matched = results.map((r) => docs.get(r.id)!);
		const hits: SearchHit[] = results.slice(q.offset, q.offset + q.limit).map((r) => {
			const d = docs.get(r.id)!;
			return {
				id: d.id,
				type: d.type,
				workspace: d.workspace,
				name: d.name,
				score: r.score,
				highlights: text ? highlights(d, r) : {},
			};
		});
		return { total: results.length, hits, facets: countFacets(matched) };
	}

	async suggest(prefix: string, opts: SuggestOptions): Promise<string[]> {
		const visible = new Set(opts.workspaces);
		const text = prefix.trim();
		if (visible.size === 0 || !text || opts.limit <= 0) return [];
		const { docs, index } = this.current;
		const types = opts.types?.length ? new Set<string>(opts.types) : undefined;
		const results = index.search(text, {
			fields: ["name"],
			prefix: true,
			combineWith: "AND",
			filter: (r) => {
				const d = docs.get(r.id);
				return d !== undefined && visible.has(d.workspace) && (!types || types.has(d.type));
			},
		});
		results.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
		const names: string[] = [];
		for (const r of results) {
			const name = docs.get(r.id)!.name;
			if (!names.includes(name)) names.push(name);
			if (names.length >= opts.limit) break;
		}
		return names;
	}

	async count(): Promise<number> {
		return this.current.docs.size;
	}

	rebuild(docs: AsyncIterable<SearchDocument> | Iterable<SearchDocument>): Promise<void> {
		// One rebuild at a time: two interleaved ones would each record and replay the other's writes.
		const run = this.rebuilding.then(() => this.load(docs));
		this.rebuilding = run.catch(() => undefined);
		return run;
	}

	private async load(docs: AsyncIterable<SearchDocument> | Iterable<SearchDocument>): Promise<void> {
		const next = new Generation();
		this.pendingOps = [];
		try {
			let batch: SearchDocument[] = [];
			for await (const doc of docs) {
				batch.push(doc);
				if (batch.length >= 1000) {
					next.upsert(batch);
					batch = [];
				}
			}
			next.upsert(batch);
			// The source was read over time; writes that arrived meanwhile are newer than what it gave.
			for (const op of this.pendingOps) {
				if ("upsert" in op) next.upsert(op.upsert);
				else next.remove(op.remove);
			}
			this.current = next;
		} finally {
			this.pendingOps = null;
		}
	}

	async close(): Promise<void> {
		await this.rebuilding;
		this.current = new Generation();
	}
}
