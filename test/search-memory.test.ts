import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemorySearch } from "../services/catalog/search/memory-search";
import { ENTITY_TYPES, type SearchDocument } from "../services/catalog/search/search-port";
import { searchContract } from "./support/search-contract";

searchContract("memory (minisearch)", async () => new MemorySearch());

// 8,000 made-up words (syllable triples), so a term matches tens of documents as in a real catalog, not half of it.
const SYLLABLES = ["res", "net", "ber", "vi", "sion", "ta", "bu", "lar", "sal", "chur", "fra", "ud", "ima", "ges", "spe", "ech", "for", "cast", "yo", "lo"];
const WORDS = SYLLABLES.flatMap((a) => SYLLABLES.flatMap((b) => SYLLABLES.map((c) => a + b + c)));
const pick = (i: number, salt: number) => WORDS[(i * 7919 + salt * 104729) % WORDS.length]!;
/** Broad words, each in a quarter of the documents: the expensive case. */
const COMMON = ["vision", "tabular", "speech", "forecast"];

function generated(n: number): SearchDocument[] {
	return Array.from({ length: n }, (_, i) => ({
		id: `doc-${i}`,
		type: ENTITY_TYPES[i % ENTITY_TYPES.length]!,
		workspace: `ws-${i % 20}`,
		name: `${pick(i, 1)}-${pick(i, 2)}-${i}`,
		description: `${pick(i, 3)} model trained on ${pick(i, 4)} data for ${pick(i, 5)}`,
		tags: [pick(i, 6), COMMON[i % COMMON.length]!],
		owner: `user-${i % 50}`,
		stage: i % 4 === 0 ? "production" : undefined,
		fields: [pick(i, 8), pick(i, 9), `col_${i % 100}`],
		updated_at: new Date(1_700_000_000_000 + i * 1000).toISOString(),
	}));
}

describe("memory search at 100,000 documents", () => {
	it("indexes and answers queries (figures printed, only sanity asserted)", async () => {
		const docs = generated(100_000);
		const port = new MemorySearch();
		let t = process.hrtime.bigint();
		for (let i = 0; i < docs.length; i += 5_000) await port.upsert(docs.slice(i, i + 5_000));
		const indexSec = Number(process.hrtime.bigint() - t) / 1e9;
		assert.equal(await port.count(), 100_000);

		const queries = 500;
		const workspaces = ["ws-1", "ws-2", "ws-3"];
		let total = 0;
		t = process.hrtime.bigint();
		for (let i = 0; i < queries; i++) {
			const r = await port.search({
				text: i % 5 === 0 ? `${pick(i, 10)}x` : `${pick(i, 10)} ${pick(i, 11)}`, // every fifth has a typo
				workspaces,
				types: i % 3 === 0 ? ["model"] : undefined,
				limit: 20,
				offset: 0,
			});
			assert.ok(r.hits.every((h) => workspaces.includes(h.workspace)));
			total += r.total;
		}
		const querySec = Number(process.hrtime.bigint() - t) / 1e9;
		t = process.hrtime.bigint();
		for (let i = 0; i < queries; i++) await port.suggest(pick(i, 12).slice(0, 3), { workspaces, limit: 10 });
		const suggestSec = Number(process.hrtime.bigint() - t) / 1e9;
		const broad = 20;
		t = process.hrtime.bigint();
		for (let i = 0; i < broad; i++) await port.search({ text: COMMON[i % COMMON.length], workspaces, limit: 20, offset: 0 });
		const broadSec = Number(process.hrtime.bigint() - t) / 1e9;

		console.log(
			`memory search, 100,000 docs: indexing ${Math.round(docs.length / indexSec)} docs/s (${indexSec.toFixed(2)} s); ` +
				`search ${Math.round(queries / querySec)} queries/s; suggest ${Math.round(queries / suggestSec)} queries/s; ` +
				`broad search (a word in 25 % of docs) ${(broad / broadSec).toFixed(1)} queries/s; ` +
				`heap ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MiB`,
		);
		assert.ok(total > 0, "the queries matched something");
		assert.ok(indexSec < 120 && querySec < 120 && broadSec < 120, "finishes in a sane time");

		// A rebuild of the same size swaps in with the same contents.
		await port.rebuild(docs.slice(0, 50_000));
		assert.equal(await port.count(), 50_000);
		await port.close();
	});
});
