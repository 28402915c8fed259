import { Client } from "@elastic/elasticsearch";
import neo4j, { type Driver } from "neo4j-driver";
import type { CatalogAdapterSettings } from "../../lib/config";
import type { LineagePort } from "./lineage/lineage-port";
import { MemoryLineage } from "./lineage/memory-lineage";
import { Neo4jLineage } from "./lineage/neo4j-lineage";
import { ElasticSearch } from "./search/elastic-search";
import { MemorySearch } from "./search/memory-search";
import type { SearchPort } from "./search/search-port";

/**
 * Which search and lineage adapters the catalog uses: Elasticsearch when ELASTICSEARCH_URL is set, Neo4j when
 * NEO4J_URL is, the embedded ones otherwise (read by lib/config.ts).
 */

export interface CatalogAdapters {
	/** The search index; rebuilds swap a fresh index in inside it. */
	search(): SearchPort;
	/** The graph a rebuild fills: a new one each time (embedded), or always the one persistent graph (Neo4j). */
	lineage(): LineagePort;
	/** Whether `lineage()` is the persistent graph: a rebuild then prunes it to the store instead of replacing it. */
	readonly persistentLineage: boolean;
	/** Whether `search()` is the shared Elasticsearch index (every instance writes the same one). */
	readonly persistentSearch: boolean;
	/** Releases the Elasticsearch client (the Neo4j driver is closed with its graph). */
	close(): Promise<void>;
}

/** How a Neo4j driver is made (tests give a fake one). */
export type Neo4jDriverFactory = (s: NonNullable<CatalogAdapterSettings["neo4j"]>) => Driver;

const realDriver: Neo4jDriverFactory = (s) => neo4j.driver(s.url, neo4j.auth.basic(s.user, s.password));

/** Factories for the adapters the settings name; clients are created on first use and shared. */
export function catalogAdapters(settings: CatalogAdapterSettings, neo4jDriver: Neo4jDriverFactory = realDriver): CatalogAdapters {
	const es = settings.elasticsearch;
	const graph = settings.neo4j;
	let client: Client | undefined;
	let shared: Neo4jLineage | undefined;
	return {
		search: () => {
			if (!es) return new MemorySearch();
			client ??= new Client({ node: es.url });
			return new ElasticSearch(client, es.indexPrefix);
		},
		lineage: () => {
			if (!graph) return new MemoryLineage();
			shared ??= new Neo4jLineage(neo4jDriver(graph), graph.database);
			return shared;
		},
		persistentLineage: graph !== undefined,
		persistentSearch: es !== undefined,
		close: async () => {
			// A later start makes new ones.
			const open = client;
			client = undefined;
			shared = undefined;
			await open?.close();
		},
	};
}
