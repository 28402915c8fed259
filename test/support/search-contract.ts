/**
 * The contract every SearchPort adapter passes: the same cases run against the in-process index and against
 * Elasticsearch, so the catalog can switch between them without a change in behaviour.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { SearchDocument, SearchPort, SearchQuery } from "../../services/catalog/search/search-port";

const A = "acme";
const B = "globex";

function doc(d: Partial<SearchDocument> & Pick<SearchDocument, "id" | "type" | "name">): SearchDocument {
	return { workspace: A, tags: [], owner: "alice", fields: [], updated_at: "2025-01-01T00:00:00.000Z", ...d };
}

export const FIXTURES: SearchDocument[] = [
	doc({
		id: "ds-iris",
		type: "dataset",
		name: "iris",
		description: "Fisher's flower measurements",
		tags: ["tabular", "classic"],
		fields: ["sepal_length", "petal_width", "species"],
	}),
	doc({
		id: "m-resnet",
		type: "model",
		name: "resnet50-cats",
		description: "Image classifier for cats and dogs",
		tags: ["vision", "cnn"],
		owner: "bob",
		fields: ["cat", "dog"],
	}),
	doc({ id: "mv-resnet-3", type: "model_version", name: "resnet50-cats v3", tags: ["vision"], owner: "bob", stage: ["production", "champion"] }),
	doc({ id: "mv-resnet-2", type: "model_version", name: "resnet50-cats v2", tags: ["vision"], owner: "bob", stage: ["staging"] }),
	doc({ id: "m-txl", type: "model", name: "transformer-xl", tags: ["nlp"], owner: "carol" }),
	doc({ id: "m-bert", type: "model", name: "bert-base", description: "a transformer language model", tags: ["nlp"], owner: "carol" }),
	doc({ id: "run-1", type: "run", name: "train resnet50 on cats", tags: ["vision", "experiment"] }),
	doc({ id: "ep-cats", type: "endpoint", name: "cats-api", tags: ["vision", "public"], owner: "carol", stage: ["production"] }),
	// Another tenant's document that matches most queries above: it must never show up for a caller of A.
	doc({
		id: "m-secret",
		workspace: B,
		type: "model",
		name: "resnet50-secret",
		description: "cats",
		tags: ["vision", "secret"],
		owner: "mallory",
		stage: ["production"],
	}),
];

const SHARDS: SearchDocument[] = Array.from({ length: 30 }, (_, i) =>
	doc({
		id: `ds-shard-${String(i).padStart(2, "0")}`,
		type: "dataset",
		name: `shard ${i}`,
		tags: ["sharded", i % 2 ? "odd" : "even"],
		owner: i % 3 ? "alice" : "bob",
	}),
);

export function searchContract(name: string, make: () => Promise<SearchPort>, options: { skip?: string } = {}): void {
	describe(`SearchPort contract: ${name}`, { skip: options.skip }, () => {
		let port: SearchPort;
		const q = (over: Partial<SearchQuery>): SearchQuery => ({ workspaces: [A], limit: 20, offset: 0, ...over });
		const ids = async (over: Partial<SearchQuery>) => (await port.search(q(over))).hits.map((h) => h.id);

		beforeEach(async () => {
			port = await make();
			await port.upsert(FIXTURES);
		});
		afterEach(async () => {
			await port.close();
		});

		it("finds documents by name, description, tags and fields", async () => {
			assert.deepEqual(await ids({ text: "iris" }), ["ds-iris"]);
			assert.deepEqual(await ids({ text: "flower", fuzzy: false }), ["ds-iris"]);
			assert.deepEqual(await ids({ text: "tabular" }), ["ds-iris"]);
			assert.deepEqual(await ids({ text: "species" }), ["ds-iris"]);
			const hit = (await port.search(q({ text: "iris" }))).hits[0]!;
			assert.equal(hit.type, "dataset");
			assert.equal(hit.workspace, A);
			assert.equal(hit.name, "iris");
			assert.ok(hit.score > 0);
		});

		it("ranks a name match above a description match", async () => {
			const found = await ids({ text: "transformer" });
			assert.deepEqual(found, ["m-txl", "m-bert"]);
		});

		it("tolerates typos unless fuzzy is off", async () => {
			assert.ok((await ids({ text: "resnet5O" })).includes("m-resnet"));
			assert.ok((await ids({ text: "resnt50" })).includes("m-resnet"));
			assert.deepEqual(await ids({ text: "resnt50", fuzzy: false }), []);
		});

		it("autocompletes names from a prefix", async () => {
			const all = await port.suggest("res", { workspaces: [A], limit: 10 });
			assert.ok(all.includes("resnet50-cats"), `got ${JSON.stringify(all)}`);
			assert.deepEqual(await port.suggest("res", { workspaces: [A], types: ["model"], limit: 10 }), ["resnet50-cats"]);
			assert.equal((await port.suggest("res", { workspaces: [A], limit: 1 })).length, 1);
			assert.deepEqual(await port.suggest("zzz", { workspaces: [A], limit: 10 }), []);
		});

		it("filters by type, tags, owner and stage", async () => {
			assert.deepEqual((await ids({ text: "resnet50", types: ["model_version"] })).sort(), ["mv-resnet-2", "mv-resnet-3"]);
			assert.deepEqual((await ids({ stage: "production" })).sort(), ["ep-cats", "mv-resnet-3"]);
			// A version holding several stages is found by each of them.
			assert.deepEqual(await ids({ stage: "champion" }), ["mv-resnet-3"]);
			const facets = (await port.search({ workspaces: [A], types: ["model_version"], limit: 10, offset: 0 })).facets;
			assert.deepEqual(facets.stage, { production: 1, champion: 1, staging: 1 });
			assert.deepEqual((await ids({ owner: "carol", types: ["model"] })).sort(), ["m-bert", "m-txl"]);
			assert.deepEqual(
				(await ids({ tags: ["vision"] })).sort(),
				["ep-cats", "m-resnet", "mv-resnet-2", "mv-resnet-3", "run-1"],
			);
			assert.deepEqual(await ids({ tags: ["vision", "public"] }), ["ep-cats"]);
		});

		it("counts facets over every match, not only the page", async () => {
			await port.upsert(SHARDS);
			const r = await port.search(q({ text: "shard", limit: 5 }));
			assert.equal(r.total, 30);
			assert.equal(r.hits.length, 5);
			assert.deepEqual(r.facets.type, { dataset: 30 });
			assert.deepEqual(r.facets.workspace, { [A]: 30 });
			assert.deepEqual(r.facets.tags, { sharded: 30, even: 15, odd: 15 });
			assert.deepEqual(r.facets.owner, { alice: 20, bob: 10 });
			assert.deepEqual(r.facets.stage, {});
			const filtered = await port.search(q({ text: "shard", tags: ["odd"], limit: 1 }));
			assert.equal(filtered.total, 15);
			assert.deepEqual(filtered.facets.tags, { sharded: 15, odd: 15 });
		});

		it("pages in a stable order (score, then id) that covers every match once", async () => {
			await port.upsert(SHARDS);
			const seen: string[] = [];
			for (let offset = 0; offset < 35; offset += 7) {
				const page = await port.search(q({ text: "shard", limit: 7, offset }));
				assert.equal(page.total, 30);
				assert.deepEqual(await ids({ text: "shard", limit: 7, offset }), page.hits.map((h) => h.id), "same page twice");
				seen.push(...page.hits.map((h) => h.id));
			}
			assert.equal(seen.length, 30);
			assert.equal(new Set(seen).size, 30);
			// Equal scores here (same shape of name), so the id decides.
			assert.deepEqual(seen, SHARDS.map((d) => d.id).sort());
		});

		it("never shows another workspace's documents, in hits, totals, facets or suggestions", async () => {
			for (const over of [{ text: "resnet50" }, { text: "cats" }, { tags: ["vision"] }, {}]) {
				const r = await port.search(q({ ...over, limit: 100 }));
				assert.ok(!r.hits.some((h) => h.workspace !== A), JSON.stringify(over));
				assert.equal(r.total, r.hits.length);
				assert.deepEqual(Object.keys(r.facets.workspace), [A]);
				assert.equal(r.facets.tags.secret, undefined);
				assert.equal(r.facets.owner.mallory, undefined);
			}
			assert.ok(!(await port.suggest("res", { workspaces: [A], limit: 10 })).includes("resnet50-secret"));
			const none = await port.search(q({ workspaces: [], text: "resnet50" }));
			assert.deepEqual(none, {
				total: 0,
				hits: [],
				facets: { type: {}, workspace: {}, tags: {}, owner: {}, stage: {} },
			});
			assert.deepEqual(await port.search(q({ workspaces: [] })), none);
			assert.deepEqual(await port.suggest("res", { workspaces: [], limit: 10 }), []);
			// A caller who may see both sees both.
			assert.ok((await ids({ workspaces: [A, B], text: "resnet50" })).includes("m-secret"));
			assert.deepEqual(await ids({ workspaces: [B], text: "resnet50" }), ["m-secret"]);
		});

		it("upserts idempotently and replaces a document by id", async () => {
			assert.equal(await port.count(), FIXTURES.length);
			await port.upsert(FIXTURES);
			await port.upsert([FIXTURES[1]!, FIXTURES[1]!]);
			assert.equal(await port.count(), FIXTURES.length);
			await port.upsert([{ ...FIXTURES[1]!, name: "efficientnet-cats" }]);
			assert.equal(await port.count(), FIXTURES.length);
			assert.deepEqual(await ids({ text: "efficientnet" }), ["m-resnet"]);
			assert.deepEqual(await ids({ text: "resnet50", types: ["model"], fuzzy: false }), []);
		});

		it("removes documents, ignoring unknown ids", async () => {
			await port.remove(["ds-iris", "no-such-id"]);
			assert.equal(await port.count(), FIXTURES.length - 1);
			assert.deepEqual(await ids({ text: "iris" }), []);
			await port.remove([]);
			assert.equal(await port.count(), FIXTURES.length - 1);
		});

		it("rebuilds into a fresh index and swaps it in atomically", async () => {
			let release!: () => void;
			const gate = new Promise<void>((r) => (release = r));
			let loaded = 0;
			const fresh = [
				doc({ id: "ds-alpha", type: "dataset", name: "alpha-images" }),
				doc({ id: "ds-beta", type: "dataset", name: "beta-images" }),
			];
			async function* source(): AsyncGenerator<SearchDocument> {
				for (const d of fresh) {
					yield d;
					loaded++;
				}
				await gate; // the source is still being read: the old index must keep answering
			}
			const rebuilding = port.rebuild(source());
			while (loaded < fresh.length) await new Promise((r) => setTimeout(r, 5));
			assert.deepEqual(await ids({ text: "iris" }), ["ds-iris"]);
			assert.deepEqual(await ids({ text: "alpha" }), []);
			assert.equal(await port.count(), FIXTURES.length);
			// A write made while the rebuild reads its source is live at once and survives the swap.
			await port.upsert([doc({ id: "ds-gamma", type: "dataset", name: "gamma-rays" })]);
			assert.deepEqual(await ids({ text: "gamma" }), ["ds-gamma"]);
			release();
			await rebuilding;
			assert.deepEqual(await ids({ text: "iris" }), []);
			assert.deepEqual(await ids({ text: "alpha" }), ["ds-alpha"]);
			assert.deepEqual(await ids({ text: "gamma" }), ["ds-gamma"]);
			assert.equal(await port.count(), fresh.length + 1);
			// The swapped-in index takes writes like the old one.
			await port.upsert([FIXTURES[0]!]);
			assert.deepEqual(await ids({ text: "iris" }), ["ds-iris"]);
		});

		it("highlights matched terms with <em>", async () => {
			const [hit] = (await port.search(q({ text: "resnet50", types: ["model"] }))).hits;
			assert.match(hit!.highlights.name?.[0] ?? "", /<em>resnet50<\/em>/);
			const [iris] = (await port.search(q({ text: "flower", fuzzy: false }))).hits;
			assert.match(iris!.highlights.description?.[0] ?? "", /<em>flower<\/em>/);
			const [species] = (await port.search(q({ text: "species" }))).hits;
			assert.deepEqual(species!.highlights.fields, ["<em>species</em>"]);
		});
	});
}
