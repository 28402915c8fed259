import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { Client } from "@elastic/elasticsearch";
import { ElasticSearch, MAPPINGS } from "../services/catalog/search/elastic-search";
import { ENTITY_TYPES } from "../services/catalog/search/search-port";
import { FakeElastic } from "./support/fake-elastic";
import { FIXTURES, searchContract } from "./support/search-contract";

// The contract against a real Elasticsearch, when there is one.
const url = process.env.ELASTICSEARCH_URL;
const realClient = url ? new Client({ node: url }) : undefined;
const prefixes: string[] = [];
searchContract(
	"elasticsearch",
	async () => {
		const prefix = `savassan-test-${randomBytes(4).toString("hex")}`;
		prefixes.push(prefix);
		return new ElasticSearch(realClient!, prefix);
	},
	url ? {} : { skip: "ELASTICSEARCH_URL not set" },
);
if (realClient) {
	after(async () => {
		// Explicit names: clusters usually refuse wildcard deletes.
		for (const prefix of prefixes) {
			const indices = Object.keys(await realClient.indices.get({ index: `${prefix}-*` }));
			if (indices.length) await realClient.indices.delete({ index: indices.join(",") });
		}
		await realClient.close();
	});
}

describe("elasticsearch adapter, request level (fake server)", () => {
	let fake: FakeElastic;
	let client: Client;
	let port: ElasticSearch;
	const P = "cat";

	before(async () => {
		fake = await FakeElastic.start();
		client = new Client({ node: fake.url });
	});
	after(async () => {
		await client.close();
		await fake.stop();
	});
	beforeEach(() => {
		fake.requests.length = 0;
		fake.indices.clear();
		fake.aliases.clear();
		port = new ElasticSearch(client, P);
	});
	afterEach(async () => {
		await port.close();
	});

	it("creates one index per type behind its alias, with explicit mappings", async () => {
		assert.equal(await port.count(), 0);
		const creates = fake.find("PUT", /^\/cat-/);
		assert.equal(creates.length, ENTITY_TYPES.length);
		for (const type of ENTITY_TYPES) {
			const create = creates.find((r) => r.path.startsWith(`/cat-${type}-`) && /^\/cat-[a-z_]+-\d+$/.test(r.path));
			assert.ok(create, `an index for ${type}`);
			assert.deepEqual(create.body.aliases, { [`cat-${type}`]: {} });
			assert.deepEqual(create.body.mappings, MAPPINGS);
		}
		const props = creates[0]!.body.mappings.properties;
		for (const f of ["id", "type", "workspace", "tags", "owner", "stage"]) assert.equal(props[f].type, "keyword", f);
		for (const f of ["name", "description", "fields"]) assert.equal(props[f].type, "text", f);
		assert.equal(props.name.fields.suggest.type, "search_as_you_type");
		// A second adapter on the same cluster finds the aliases and creates nothing.
		fake.requests.length = 0;
		await new ElasticSearch(client, P).count();
		assert.equal(fake.find("PUT", /.*/).length, 0);
	});

	it("upserts with one NDJSON bulk of index actions with ids, waiting for refresh", async () => {
		await port.upsert([FIXTURES[0]!, FIXTURES[1]!, FIXTURES[0]!]);
		const [bulk, ...more] = fake.find("POST", /\/_bulk$/).concat(fake.find("PUT", /\/_bulk$/));
		assert.equal(more.length, 0);
		assert.match(bulk!.contentType ?? "", /ndjson/);
		assert.equal(bulk!.query.refresh, "wait_for");
		assert.deepEqual(bulk!.body, [
			{ index: { _index: "cat-dataset", _id: "ds-iris" } },
			FIXTURES[0],
			{ index: { _index: "cat-model", _id: "m-resnet" } },
			FIXTURES[1],
		]);
		assert.equal(await port.count(), 2);

		fake.requests.length = 0;
		await port.remove(["ds-iris"]);
		const [del] = fake.find("POST", /\/_bulk$/).concat(fake.find("PUT", /\/_bulk$/));
		assert.deepEqual(
			del!.body,
			ENTITY_TYPES.map((t) => ({ delete: { _index: `cat-${t}`, _id: "ds-iris" } })),
		);
		assert.equal(await port.count(), 1);
	});

	it("reports a failed bulk item instead of pretending success", async () => {
		await port.count();
		fake.aliases.set("cat-run", "gone"); // an alias pointing at a missing index
		await assert.rejects(port.upsert([FIXTURES[6]!]), /bulk write failed for 1 document\(s\): run-1/);
	});

	it("searches with a bool query: boosted fuzzy multi_match, mandatory workspace filter, facets, highlight", async () => {
		fake.searchResponse = {
			took: 1,
			timed_out: false,
			_shards: { total: 1, successful: 1, skipped: 0, failed: 0 },
			hits: {
				total: { value: 42, relation: "eq" },
				max_score: 3.5,
				hits: [
					{
						_index: "cat-model-1",
						_id: "m-resnet",
						_score: 3.5,
						_source: { id: "m-resnet", type: "model", workspace: "acme", name: "resnet50-cats" },
						highlight: { name: ["<em>resnet50</em>-cats"] },
						sort: [3.5, "m-resnet"],
					},
				],
			},
			aggregations: {
				type: { doc_count_error_upper_bound: 0, sum_other_doc_count: 0, buckets: [{ key: "model", doc_count: 40 }, { key: "run", doc_count: 2 }] },
				workspace: { doc_count_error_upper_bound: 0, sum_other_doc_count: 0, buckets: [{ key: "acme", doc_count: 42 }] },
				tags: { doc_count_error_upper_bound: 0, sum_other_doc_count: 0, buckets: [{ key: "vision", doc_count: 42 }] },
				owner: { doc_count_error_upper_bound: 0, sum_other_doc_count: 0, buckets: [{ key: "bob", doc_count: 42 }] },
				stage: { doc_count_error_upper_bound: 0, sum_other_doc_count: 0, buckets: [] },
			},
		};
		const result = await port.search({
			text: "resnet5O",
			workspaces: ["acme", "beta"],
			types: ["model", "run"],
			tags: ["vision", "cnn"],
			owner: "bob",
			stage: "production",
			limit: 10,
			offset: 20,
		});
		const [req] = fake.find("POST", /\/_search$/);
		assert.equal(req!.path, "/cat-model,cat-run/_search");
		const body = req!.body;
		assert.equal(body.from, 20);
		assert.equal(body.size, 10);
		assert.equal(body.track_total_hits, true);
		assert.deepEqual(body.query.bool.must, [
			{ multi_match: { query: "resnet5O", fields: ["name^4", "tags^2", "fields^1.5", "description"], fuzziness: "AUTO" } },
		]);
		assert.deepEqual(body.query.bool.filter, [
			{ terms: { workspace: ["acme", "beta"] } },
			{ terms: { type: ["model", "run"] } },
			{ term: { tags: "vision" } },
			{ term: { tags: "cnn" } },
			{ term: { owner: "bob" } },
			{ term: { stage: "production" } },
		]);
		assert.deepEqual(body.sort, [{ _score: { order: "desc" } }, { id: { order: "asc" } }]);
		for (const f of ["type", "workspace", "tags", "owner", "stage"]) assert.deepEqual(body.aggs[f], { terms: { field: f, size: 50 } });
		assert.deepEqual(body.highlight.pre_tags, ["<em>"]);
		assert.deepEqual(Object.keys(body.highlight.fields).sort(), ["description", "fields", "name"]);

		assert.deepEqual(result, {
			total: 42,
			hits: [{ id: "m-resnet", type: "model", workspace: "acme", name: "resnet50-cats", score: 3.5, highlights: { name: ["<em>resnet50</em>-cats"] } }],
			facets: { type: { model: 40, run: 2 }, workspace: { acme: 42 }, tags: { vision: 42 }, owner: { bob: 42 }, stage: {} },
		});

		// Without typo tolerance, or text, or any workspace.
		fake.requests.length = 0;
		await port.search({ text: "resnet50", workspaces: ["acme"], limit: 5, offset: 0, fuzzy: false });
		await port.search({ workspaces: ["acme"], limit: 5, offset: 0 });
		await port.search({ text: "resnet50", workspaces: [], limit: 5, offset: 0 });
		const [exact, all, ...none] = fake.find("POST", /\/_search$/);
		assert.equal(none.length, 0, "an empty workspace list never reaches the server");
		assert.equal(exact!.path, `/${ENTITY_TYPES.map((t) => `cat-${t}`).join(",")}/_search`);
		assert.equal(exact!.body.query.bool.must[0].multi_match.fuzziness, undefined);
		assert.deepEqual(all!.body.query.bool.must, [{ match_all: {} }]);
		assert.deepEqual(all!.body.query.bool.filter, [{ terms: { workspace: ["acme"] } }]);
	});

	it("suggests with a bool_prefix multi_match on the search_as_you_type fields, one hit per name", async () => {
		fake.searchResponse = {
			...fake.searchResponse,
			hits: { total: { value: 1, relation: "eq" }, max_score: 1, hits: [{ _index: "x", _id: "m-resnet", _score: 1, _source: { name: "resnet50-cats" } }] },
		};
		assert.deepEqual(await port.suggest("res", { workspaces: ["acme"], types: ["model"], limit: 5 }), ["resnet50-cats"]);
		const [req] = fake.find("POST", /\/_search$/);
		assert.equal(req!.path, "/cat-model/_search");
		assert.deepEqual(req!.body.query.bool.must, [
			{ multi_match: { query: "res", type: "bool_prefix", operator: "and", fields: ["name.suggest", "name.suggest._2gram", "name.suggest._3gram"] } },
		]);
		assert.deepEqual(req!.body.query.bool.filter, [{ terms: { workspace: ["acme"] } }, { terms: { type: ["model"] } }]);
		assert.deepEqual(req!.body.collapse, { field: "name.raw" });
		assert.equal(req!.body.size, 5);
	});

	it("rebuilds into new indices and swaps every alias in one updateAliases call", async () => {
		await port.upsert(FIXTURES);
		const before = new Map(fake.aliases);
		fake.requests.length = 0;
		await port.rebuild(FIXTURES.slice(0, 3));

		const creates = fake.find("PUT", /^\/cat-/);
		assert.equal(creates.length, ENTITY_TYPES.length);
		for (const c of creates) assert.equal(c.body.aliases, undefined, "new indices get no alias until the swap");
		const loads = fake.find("POST", /\/_bulk$/).concat(fake.find("PUT", /\/_bulk$/));
		assert.ok(loads.length >= 1);
		for (const l of loads) assert.ok(l.body[0].index._index.match(/^cat-[a-z_]+-\d+/), "loaded into the new indices, not the aliases");

		const swaps = fake.find("POST", /^\/_aliases$/);
		assert.equal(swaps.length, 1, "one updateAliases call");
		const actions = swaps[0]!.body.actions;
		assert.equal(actions.length, 2 * ENTITY_TYPES.length);
		for (const type of ENTITY_TYPES) {
			const alias = `cat-${type}`;
			assert.ok(actions.some((a: any) => a.remove?.alias === alias && a.remove.index === before.get(alias)), `remove ${alias}`);
			const add = actions.find((a: any) => a.add?.alias === alias);
			assert.ok(add && add.add.index !== before.get(alias) && fake.indices.has(add.add.index), `add ${alias}`);
		}
		// The old indices are deleted after the swap, and the refresh came before it.
		const order = fake.requests.map((r) => `${r.method} ${r.path}`);
		const swapAt = order.indexOf("POST /_aliases");
		assert.ok(order.findIndex((o) => o.endsWith("/_refresh")) < swapAt);
		const del = fake.find("DELETE", /.*/);
		assert.equal(del.length, 1);
		assert.ok(order.indexOf(`DELETE ${del[0]!.path}`) > swapAt);
		assert.deepEqual(del[0]!.path.slice(1).split(",").sort(), [...before.values()].sort());
		for (const old of before.values()) assert.ok(!fake.indices.has(old));
		assert.equal(await port.count(), 3);
	});

	it("replays writes made during a rebuild onto the new indices", async () => {
		await port.upsert(FIXTURES.slice(0, 2));
		let release!: () => void;
		const gate = new Promise<void>((r) => (release = r));
		async function* source() {
			yield FIXTURES[0]!;
			await gate;
		}
		const rebuilding = port.rebuild(source());
		await new Promise((r) => setTimeout(r, 20));
		await port.upsert([FIXTURES[4]!]);
		await port.remove(["ds-iris"]);
		release();
		await rebuilding;
		const live = (type: string) => fake.indices.get(fake.aliases.get(`cat-${type}`)!)!.docs;
		assert.deepEqual([...live("model").keys()], ["m-txl"]);
		assert.equal(live("dataset").size, 0);
		assert.equal(await port.count(), 1);
	});
});
