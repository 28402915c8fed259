/**
 * The Elasticsearch search adapter. One index per entity type, always reached through an alias
 * (`<prefix>-<type>` → `<prefix>-<type>-<timestamp>`), so a rebuild can load new indices beside the live ones
 * and swap every alias in one `updateAliases` call: readers see the old indices or the new ones, never a mix.
 */
import type { Client, estypes } from "@elastic/elasticsearch";
import {
	BOOSTS,
	emptyFacets,
	emptyResult,
	ENTITY_TYPES,
	type EntityType,
	type FacetName,
	type SearchDocument,
	type SearchPort,
	type SearchQuery,
	type SearchResult,
	type SuggestOptions,
} from "./search-port";

export interface ElasticSearchOptions {
	/** Refresh policy of writes: "wait_for" (default) makes them visible to the next search. */
	refresh?: estypes.Refresh;
	/** Largest number of values returned per facet. */
	facetSize?: number;
	/** Documents per bulk request. */
	bulkSize?: number;
}

const FACETS: FacetName[] = ["type", "workspace", "tags", "owner", "stage"];
const QUERY_FIELDS = [`name^${BOOSTS.name}`, `tags^${BOOSTS.tags}`, `fields^${BOOSTS.fields}`, "description"];
const SUGGEST_FIELDS = ["name.suggest", "name.suggest._2gram", "name.suggest._3gram"];

/** Explicit mappings: filters and facets on keywords, full text on name/description/fields. */
export const MAPPINGS: estypes.MappingTypeMapping = {
	dynamic: "strict",
	properties: {
		id: { type: "keyword" },
		type: { type: "keyword" },
		workspace: { type: "keyword" },
		tags: { type: "keyword" },
		owner: { type: "keyword" },
		stage: { type: "keyword" },
		name: {
			type: "text",
			fields: {
				suggest: { type: "search_as_you_type" },
				// Distinct names for suggestions (collapse needs a keyword).
				raw: { type: "keyword", ignore_above: 512 },
			},
		},
		description: { type: "text" },
		fields: { type: "text" },
		updated_at: { type: "date" },
	},
};

type Op = { upsert: SearchDocument[] } | { remove: string[] };
type Buckets = Record<FacetName, estypes.AggregationsStringTermsAggregate>;

export class ElasticSearch implements SearchPort {
	private readonly refresh: estypes.Refresh;
	private readonly facetSize: number;
	private readonly bulkSize: number;
	private ready: Promise<void> | undefined;
	private pendingOps: Op[] | null = null;
	private rebuilding: Promise<void> = Promise.resolve();
	private lastStamp = 0;

	constructor(
		private readonly client: Client,
		private readonly prefix: string,
		opts: ElasticSearchOptions = {},
	) {
		this.refresh = opts.refresh ?? "wait_for";
		this.facetSize = opts.facetSize ?? 50;
		this.bulkSize = opts.bulkSize ?? 1000;
	}

	alias(type: EntityType): string {
		return `${this.prefix}-${type}`;
	}

	private aliases(types?: EntityType[]): string[] {
		return (types?.length ? [...new Set(types)] : [...ENTITY_TYPES]).map((t) => this.alias(t));
	}

	/** Timestamp of a new generation of indices, strictly increasing even within one millisecond. */
	private stamp(): number {
		this.lastStamp = Math.max(Date.now(), this.lastStamp + 1);
		return this.lastStamp;
	}

	private async createIndex(index: string, alias?: string): Promise<void> {
		await this.client.indices.create({
			index,
			settings: { number_of_shards: 1 },
			mappings: MAPPINGS,
			...(alias ? { aliases: { [alias]: {} } } : {}),
		});
	}

	/** Creates, once, an index behind each alias that has none yet. */
	private ensureAliases(): Promise<void> {
		this.ready ??= (async () => {
			const stamp = this.stamp();
			for (const type of ENTITY_TYPES) {
				const alias = this.alias(type);
				if (!(await this.client.indices.existsAlias({ name: alias }))) await this.createIndex(`${alias}-${stamp}`, alias);
			}
		})().catch((err) => {
			this.ready = undefined; // try again on the next call
			throw err;
		});
		return this.ready;
	}

	/** Bulk writes with ids; `target` maps a type to the index (or alias) to write to. */
	private async bulk(
		ops: Op,
		target: (type: EntityType) => string,
		refresh: estypes.Refresh = this.refresh,
	): Promise<void> {
		const operations: unknown[] = [];
		if ("upsert" in ops) {
			for (const d of ops.upsert) operations.push({ index: { _index: target(d.type), _id: d.id } }, d);
		} else {
			// The type of an id is not known here: delete it from every index (a miss is not an error).
			for (const id of ops.remove) for (const t of ENTITY_TYPES) operations.push({ delete: { _index: target(t), _id: id } });
		}
		for (let i = 0; i < operations.length; ) {
			// An index action is two lines, a delete one; never split a pair.
			let end = Math.min(operations.length, i + this.bulkSize * 2);
			if ("upsert" in ops && (end - i) % 2) end--;
			const res = await this.client.bulk({ operations: operations.slice(i, end), refresh });
			if (res.errors) {
				const failed = res.items
					.map((item) => Object.values(item)[0]!)
					.filter((r) => r.error && !(r.status === 404 && "remove" in ops));
				if (failed.length)
					throw new Error(`bulk write failed for ${failed.length} document(s): ${failed[0]!._id}: ${failed[0]!.error?.reason}`);
			}
			i = end;
		}
	}

	async upsert(docs: SearchDocument[]): Promise<void> {
		if (!docs.length) return;
		await this.ensureAliases();
		const unique = [...new Map(docs.map((d) => [d.id, d])).values()];
		this.pendingOps?.push({ upsert: unique });
		await this.bulk({ upsert: unique }, (t) => this.alias(t));
	}

	async remove(ids: string[]): Promise<void> {
		if (!ids.length) return;
		await this.ensureAliases();
		this.pendingOps?.push({ remove: [...ids] });
		await this.bulk({ remove: [...ids] }, (t) => this.alias(t));
	}

	/** The bool query's filters; the workspace filter is always there. */
	private filters(q: Pick<SearchQuery, "workspaces" | "types" | "tags" | "owner" | "stage">): estypes.QueryDslQueryContainer[] {
		const filter: estypes.QueryDslQueryContainer[] = [{ terms: { workspace: q.workspaces } }];
		if (q.types?.length) filter.push({ terms: { type: q.types } });
		for (const tag of q.tags ?? []) filter.push({ term: { tags: tag } }); // every tag listed
		if (q.owner !== undefined) filter.push({ term: { owner: q.owner } });
		if (q.stage !== undefined) filter.push({ term: { stage: q.stage } });
		return filter;
	}

	/** The search request body (exported shape so tests can check it). */
	searchRequest(q: SearchQuery): estypes.SearchRequest {
		const text = q.text?.trim();
		const must: estypes.QueryDslQueryContainer[] = text
			? [
					{
						multi_match: {
							query: text,
							fields: QUERY_FIELDS,
							...(q.fuzzy === false ? {} : { fuzziness: "AUTO" }),
						},
					},
				]
			: [{ match_all: {} }];
		return {
			index: this.aliases(q.types).join(","),
			from: q.offset,
			size: q.limit,
			track_total_hits: true,
			_source: ["id", "type", "workspace", "name"],
			query: { bool: { must, filter: this.filters(q) } },
			// Score, then id: a stable order for pagination.
			sort: [{ _score: { order: "desc" } }, { id: { order: "asc" } }],
			aggs: Object.fromEntries(FACETS.map((f) => [f, { terms: { field: f, size: this.facetSize } }])),
			...(text
				? {
						highlight: {
							pre_tags: ["<em>"],
							post_tags: ["</em>"],
							encoder: "html",
							fields: { name: { number_of_fragments: 0 }, description: {}, fields: {} },
						},
					}
				: {}),
		};
	}

	async search(q: SearchQuery): Promise<SearchResult> {
		if (!q.workspaces.length) return emptyResult(); // deny by default, without asking the server
		await this.ensureAliases();
		const res = await this.client.search<SearchDocument, Buckets>(this.searchRequest(q));
		const total = res.hits.total;
		const facets = emptyFacets();
		for (const f of FACETS) {
			const buckets = res.aggregations?.[f]?.buckets;
			for (const b of Array.isArray(buckets) ? buckets : []) facets[f][String(b.key)] = b.doc_count;
		}
		return {
			total: typeof total === "number" ? total : (total?.value ?? 0),
			hits: res.hits.hits.map((h) => ({
				id: h._source!.id,
				type: h._source!.type,
				workspace: h._source!.workspace,
				name: h._source!.name,
				score: h._score ?? 0,
				highlights: h.highlight ?? {},
			})),
			facets,
		};
	}

	async suggest(prefix: string, opts: SuggestOptions): Promise<string[]> {
		const text = prefix.trim();
		if (!opts.workspaces.length || !text || opts.limit <= 0) return [];
		await this.ensureAliases();
		const res = await this.client.search<Pick<SearchDocument, "name">>({
			index: this.aliases(opts.types).join(","),
			size: opts.limit,
			_source: ["name"],
			query: {
				bool: {
					must: [{ multi_match: { query: text, type: "bool_prefix", operator: "and", fields: SUGGEST_FIELDS } }],
					filter: this.filters(opts),
				},
			},
			collapse: { field: "name.raw" }, // one hit per distinct name
			sort: [{ _score: { order: "desc" } }, { id: { order: "asc" } }],
		});
		return res.hits.hits.map((h) => h._source!.name);
	}

	async count(): Promise<number> {
		await this.ensureAliases();
		return (await this.client.count({ index: this.aliases().join(",") })).count;
	}

	rebuild(docs: AsyncIterable<SearchDocument> | Iterable<SearchDocument>): Promise<void> {
		// One rebuild at a time: each owns the write log and the set of indices it swaps.
		const run = this.rebuilding.then(() => this.load(docs));
		this.rebuilding = run.catch(() => undefined);
		return run;
	}

	private async load(docs: AsyncIterable<SearchDocument> | Iterable<SearchDocument>): Promise<void> {
		await this.ensureAliases();
		const stamp = this.stamp();
		const fresh = new Map(ENTITY_TYPES.map((t) => [t, `${this.alias(t)}-${stamp}`]));
		const target = (t: EntityType) => fresh.get(t)!;
		for (const index of fresh.values()) await this.createIndex(index);
		this.pendingOps = [];
		let swapped = false;
		try {
			let batch: SearchDocument[] = [];
			const flush = async () => {
				// Unseen until the swap, so no refresh per batch: one refresh before the swap.
				await this.bulk({ upsert: [...new Map(batch.map((d) => [d.id, d])).values()] }, target, false);
				batch = [];
			};
			for await (const doc of docs) {
				batch.push(doc);
				if (batch.length >= this.bulkSize) await flush();
			}
			if (batch.length) await flush();
			// Writes made while the source was read are newer than it: replay them onto the new indices.
			while (this.pendingOps.length) {
				const op = this.pendingOps.shift()!;
				await this.bulk(op, target, false);
			}
			await this.client.indices.refresh({ index: [...fresh.values()].join(",") });

			const current = await this.client.indices.getAlias({ name: this.aliases() });
			const actions: estypes.IndicesUpdateAliasesAction[] = [];
			const old: string[] = [];
			for (const [index, { aliases }] of Object.entries(current)) {
				for (const alias of Object.keys(aliases ?? {})) {
					if (!this.aliases().includes(alias)) continue;
					actions.push({ remove: { index, alias } });
					old.push(index);
				}
			}
			for (const [type, index] of fresh) actions.push({ add: { index, alias: this.alias(type) } });
			await this.client.indices.updateAliases({ actions });
			swapped = true;
			// A write that was in flight during the swap may have reached the old index: apply it again.
			for (const op of this.pendingOps) await this.bulk(op, (t) => this.alias(t));
			this.pendingOps = null;
			if (old.length) await this.client.indices.delete({ index: [...new Set(old)].join(","), ignore_unavailable: true });
		} catch (err) {
			this.pendingOps = null;
			if (swapped) throw err; // the fresh indices are live; at worst old ones are left behind
			// Nothing was swapped: the fresh indices are garbage.
			await this.client.indices
				.delete({ index: [...fresh.values()].join(","), ignore_unavailable: true })
				.catch(() => undefined);
			throw err;
		}
	}

	async close(): Promise<void> {
		await this.rebuilding;
		// The client belongs to the caller (it may be shared); it closes it.
	}
}
