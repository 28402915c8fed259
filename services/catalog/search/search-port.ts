/**
 * The catalog's search port: full-text search, filters, facets and autocomplete over the catalog's entities.
 * Two adapters implement it (`memory-search.ts`, in-process; `elastic-search.ts`, Elasticsearch) and both pass
 * the same contract suite (`test/support/search-contract.ts`).
 */

export const ENTITY_TYPES = ["dataset", "dataset_version", "model", "model_version", "run", "endpoint"] as const;
export type EntityType = (typeof ENTITY_TYPES)[number];

/** What gets indexed for one catalog entity. `id` is unique across every type. */
export interface SearchDocument {
	id: string;
	type: EntityType;
	workspace: string;
	name: string;
	description?: string;
	tags: string[];
	owner: string;
	/** Every stage/alias the entity holds (`staging`, `prod`, `champion`…): a model version can hold several. */
	stage?: string[];
	/** Column names of a dataset or class names of a model: searchable, so "species" finds the iris dataset. */
	fields: string[];
	/** ISO 8601. */
	updated_at: string;
}

export interface SearchQuery {
	/** Free text over name, tags, fields and description; absent or blank: every document that passes the filters. */
	text?: string;
	types?: EntityType[];
	/**
	 * The workspaces the caller may see. Required: authorization is enforced here, deny by default, so an empty
	 * list finds nothing (hits, totals and facets alike).
	 */
	workspaces: string[];
	/** A document must carry every tag listed (drill-down). */
	tags?: string[];
	owner?: string;
	stage?: string;
	limit: number;
	offset: number;
	/** Typo tolerance; default true. */
	fuzzy?: boolean;
}

export interface SearchHit {
	id: string;
	type: EntityType;
	workspace: string;
	name: string;
	score: number;
	/** Field → fragments with the matched terms in `<em>…</em>` (the rest HTML-escaped). */
	highlights: Record<string, string[]>;
}

export type FacetName = "type" | "workspace" | "tags" | "owner" | "stage";

export interface SearchResult {
	/** Every matching document, not only this page. */
	total: number;
	/** Ordered by score, then id, so pages are stable. */
	hits: SearchHit[];
	/** Value → number of matching documents, counted over all matches (not only the page). */
	facets: Record<FacetName, Record<string, number>>;
}

export interface SuggestOptions {
	workspaces: string[];
	types?: EntityType[];
	limit: number;
}

export interface SearchPort {
	/** Adds or replaces documents by id; idempotent. */
	upsert(docs: SearchDocument[]): Promise<void>;
	/** Unknown ids are ignored. */
	remove(ids: string[]): Promise<void>;
	search(q: SearchQuery): Promise<SearchResult>;
	/** Autocomplete on names: distinct names starting with (a word starting with) `prefix`, best first. */
	suggest(prefix: string, opts: SuggestOptions): Promise<string[]>;
	/** Documents in the index. */
	count(): Promise<number>;
	/**
	 * Builds a fresh index from `docs` and swaps it in atomically: readers keep seeing the old index until the
	 * swap, never a half-built one. Writes made while it runs are applied to the new index too.
	 */
	rebuild(docs: AsyncIterable<SearchDocument> | Iterable<SearchDocument>): Promise<void>;
	close(): Promise<void>;
}

/** Field boosts shared by both adapters. */
export const BOOSTS = { name: 4, tags: 2, fields: 1.5, description: 1 } as const;

export function emptyFacets(): SearchResult["facets"] {
	return { type: {}, workspace: {}, tags: {}, owner: {}, stage: {} };
}

export function emptyResult(): SearchResult {
	return { total: 0, hits: [], facets: emptyFacets() };
}
