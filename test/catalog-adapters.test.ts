import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConfigError, loadConfig } from "../lib/config";
import { catalogAdapters } from "../services/catalog/catalog-adapters";
import { catalogService } from "../services/catalog/catalog.service";
import { PRUNE_EDGES, PRUNE_NODES } from "../services/catalog/lineage/neo4j-lineage";
import { startBroker, testConfig } from "./support/broker";
import { FakeElastic } from "./support/fake-elastic";
import { FakeNeo4j, type RecordedQuery } from "./support/fake-neo4j";
import { startTestNats, type TestNats } from "./support/nats";

/**
 * The catalog's adapter choice: the environment variables it reads, and the catalog service on Elasticsearch
 * and Neo4j (a fake server and a fake driver), through a registration and a rebuild.
 */

const catalogAdapterSettings = (env: Record<string, string>) => loadConfig(env, []).catalog;

const problems = (env: Record<string, string>) => {
	try {
		catalogAdapterSettings(env);
	} catch (err) {
		assert.ok(err instanceof ConfigError);
		return err.problems;
	}
	return assert.fail("expected a ConfigError");
};

describe("catalog adapter settings", () => {
	it("is embedded by default, and names Elasticsearch and Neo4j when their URLs are set", () => {
		assert.deepEqual(catalogAdapterSettings({}), {});
		assert.deepEqual(catalogAdapterSettings({ ELASTICSEARCH_URL: "https://es.example:9200", NEO4J_URL: "neo4j+s://graph.example", NEO4J_USER: "cat", NEO4J_PASSWORD: "pw" }), {
			elasticsearch: { url: "https://es.example:9200", indexPrefix: "savassan-catalog" },
			neo4j: { url: "neo4j+s://graph.example", user: "cat", password: "pw", database: "neo4j" },
		});
	});

	it("reports every bad variable at once, in sentences that never show a password", () => {
		const found = problems({ ELASTICSEARCH_URL: "es host:9200", NEO4J_URL: "http://ana:s3cret@graph:7474", ELASTICSEARCH_INDEX_PREFIX: "Bad/Prefix" });
		assert.deepEqual(found, [
			"ELASTICSEARCH_URL is not a URL (expected http://host:port)",
			'ELASTICSEARCH_INDEX_PREFIX "Bad/Prefix" must be lower-case letters, digits, \'_\' or \'-\'',
			"NEO4J_URL http://ana:***@graph:7474 must use neo4j, neo4j+s, neo4j+ssc, bolt, bolt+s, bolt+ssc",
			"NEO4J_USER is required with NEO4J_URL",
			"NEO4J_PASSWORD is required with NEO4J_URL",
		]);
		assert.ok(!found.join(" ").includes("s3cret"));
		assert.deepEqual(problems({ NEO4J_PASSWORD: "pw" }), ["NEO4J_USER, NEO4J_PASSWORD and NEO4J_DATABASE need NEO4J_URL"]);
	});
});

describe("catalog service on Elasticsearch and Neo4j (fake server, fake driver)", () => {
	let nats: TestNats;
	let es: FakeElastic;
	let broker: ServiceBroker;
	const neo = new FakeNeo4j();
	/** Just enough of a graph to answer the adapter: nodes by id. */
	const nodes = new Map<string, string>();
	neo.responder = (q: RecordedQuery) => {
		if (q.query.startsWith("MERGE (n:Entity")) {
			nodes.set(String(q.params.id), String(q.params.type));
			return [{ id: q.params.id }];
		}
		if (q.query.includes("RETURN n.id AS id, n.type AS type")) return [...nodes].filter(([id]) => id === q.params.from || id === q.params.to).map(([id, type]) => ({ id, type }));
		if (q.query.includes("MERGE (a)-[r:LINEAGE")) return [{ removed_at: null }];
		return [];
	};

	before(async () => {
		nats = await startTestNats();
		es = await FakeElastic.start();
		const settings = catalogAdapterSettings({ ELASTICSEARCH_URL: es.url, ELASTICSEARCH_INDEX_PREFIX: "cat", NEO4J_URL: "bolt://graph:7687", NEO4J_USER: "cat", NEO4J_PASSWORD: "pw" });
		let drivers = 0;
		const adapters = catalogAdapters(settings, (s) => {
			assert.deepEqual([s.url, s.user, s.database], ["bolt://graph:7687", "cat", "neo4j"]);
			assert.equal(++drivers, 1, "one driver, shared by every rebuild");
			return neo.driver;
		});
		broker = await startBroker(nats.url, "catalog-adapters", [catalogService(testConfig(), adapters)]);
	});

	after(async () => {
		await broker?.stop();
		await es?.stop();
		await nats?.stop();
	});

	it("indexes a registration into the type's alias and MERGEs its node and edge", async () => {
		es.requests.length = 0;
		neo.queries.length = 0;
		await broker.call("catalog.datasets.register", { id: "ds-1", name: "Churn", workspace: "w", owner: "ana" });
		await broker.call("catalog.datasets.versions.register", { id: "dsv-1", dataset_id: "ds-1", version: "v1", manifest_uri: "s3://d/v1", file_count: 1, bytes: 1, workspace: "w", owner: "ana" });
		const bulks = es.find("POST", /^\/_bulk$/).concat(es.find("PUT", /^\/_bulk$/));
		assert.deepEqual(bulks.map((b) => b.body[0].index._index), ["cat-dataset", "cat-dataset_version"]);
		assert.deepEqual([...es.indices.get(es.aliases.get("cat-dataset")!)!.docs.keys()], ["ds-1"]);
		const merges = neo.statements.filter((q) => q.query.includes("MERGE"));
		assert.deepEqual(merges.map((q) => q.params.id ?? `${q.params.from}-${q.params.kind}->${q.params.to}`), ["ds-1", "dsv-1", "ds-1-version_of->dsv-1"]);
	});

	it("rebuilds: fresh indices behind the aliases; the same graph pruned to the store then written again, its driver left open", async () => {
		const before = es.aliases.get("cat-dataset");
		neo.queries.length = 0;
		assert.deepEqual(await broker.call("catalog.rebuild", {}), { entities: 2 });
		const after = es.aliases.get("cat-dataset")!;
		assert.notEqual(after, before, "the alias moved to a new index");
		assert.deepEqual([...es.indices.get(after)!.docs.keys()], ["ds-1"]);
		const [pruneNodes, pruneEdges, ...writes] = neo.statements;
		assert.deepEqual([pruneNodes!.query, pruneNodes!.params], [PRUNE_NODES, { ids: ["ds-1", "dsv-1"] }]);
		assert.deepEqual([pruneEdges!.query, pruneEdges!.params], [PRUNE_EDGES, { edges: ["ds-1|version_of|dsv-1"] }]);
		assert.deepEqual(writes.filter((q) => q.query.includes("MERGE")).map((q) => q.params.id ?? q.params.kind), ["ds-1", "dsv-1", "version_of"]);
		assert.equal(neo.closed, false);
	});

	it("closes the driver when the service stops", async () => {
		await broker.stop();
		assert.equal(neo.closed, true);
	});
});
