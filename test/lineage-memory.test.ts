import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { performance } from "node:perf_hooks";
import type { EdgeKind, NodeType } from "../services/catalog/lineage/lineage-port";
import { MemoryLineage } from "../services/catalog/lineage/memory-lineage";
import { lineageContract } from "./support/lineage-contract";

lineageContract("memory (graphology)", async () => new MemoryLineage());

/** Deterministic, so a slow run can be replayed on the same graph. */
function mulberry32(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

describe("memory lineage at scale", () => {
	it("walks 5 hops up and down a 100,000-node graph quickly", async () => {
		const rand = mulberry32(42);
		const int = (n: number) => Math.floor(rand() * n);
		const popular = (n: number) => Math.floor(n * rand() * rand()); // a few datasets feed many runs
		const counts: [NodeType, string, number][] = [
			["dataset", "ds", 6_000],
			["dataset_version", "dv", 24_000],
			["run", "run", 30_000],
			["model", "m", 3_000],
			["model_version", "mv", 30_000],
			["endpoint", "ep", 7_000],
		];
		const g = new MemoryLineage();
		const t0 = performance.now();
		const all: string[] = [];
		for (const [type, prefix, n] of counts) {
			for (let i = 0; i < n; i++) {
				const id = `${prefix}${i}`;
				all.push(id);
				await g.upsertNode({ id, type, workspace: `w${i % 20}` });
			}
		}
		let edges = 0;
		const add = async (from: string, kind: EdgeKind, to: string) => {
			await g.addEdge({ from, to, kind, created_at: "2025-01-01T00:00:00Z" });
			edges++;
		};
		for (let i = 0; i < 24_000; i++) await add(`ds${Math.floor(i / 4)}`, "version_of", `dv${i}`);
		for (let i = 100; i < 24_000; i++) if (rand() < 0.25) await add(`dv${popular(i)}`, "derived_from", `dv${i}`);
		for (let i = 0; i < 30_000; i++) {
			const inputs = new Set(Array.from({ length: 1 + int(4) }, () => popular(24_000)));
			for (const d of inputs) await add(`dv${d}`, "input_to", `run${i}`);
			if (i > 0 && rand() < 0.1) await add(`mv${int(i)}`, "input_to", `run${i}`); // fine-tuning an earlier model
			await add(`run${i}`, "produced", `mv${i}`);
			await add(`m${i % 3_000}`, "version_of", `mv${i}`);
		}
		for (let i = 0; i < 7_000; i++) await add(`mv${int(30_000)}`, "deployed_as", `ep${i}`);
		const buildMs = performance.now() - t0;
		assert.equal(await g.nodeCount(), 100_000);

		const up: number[] = [];
		const down: number[] = [];
		let reached = 0;
		let largest = 0;
		for (let i = 0; i < 1_000; i++) {
			const id = all[int(all.length)]!;
			let t = performance.now();
			const u = (await g.upstream(id, { depth: 5 })).nodes.length;
			up.push(performance.now() - t);
			t = performance.now();
			const d = (await g.downstream(id, { depth: 5 })).nodes.length;
			down.push(performance.now() - t);
			reached += u + d;
			largest = Math.max(largest, u, d);
		}
		const both = [...up, ...down].sort((a, b) => a - b);
		up.sort((a, b) => a - b);
		down.sort((a, b) => a - b);
		const f = (x: number) => x.toFixed(3);
		console.log(
			`lineage memory: 100,000 nodes, ${edges} edges built in ${buildMs.toFixed(0)} ms; depth 5 over 1,000 starts ` +
				`(nodes per answer: avg ${(reached / 2_000).toFixed(1)}, max ${largest}): upstream p50 ${f(percentile(up, 50))} ms p99 ${f(percentile(up, 99))} ms, ` +
				`downstream p50 ${f(percentile(down, 50))} ms p99 ${f(percentile(down, 99))} ms, max ${f(both.at(-1)!)} ms`,
		);
		// The busiest starts: the most used dataset versions, whose downstream is the widest.
		let hotMs = 0;
		let hotNodes = 0;
		for (let i = 0; i < 20; i++) {
			const t = performance.now();
			hotNodes = Math.max(hotNodes, (await g.downstream(`dv${i}`, { depth: 5 })).nodes.length);
			hotMs = Math.max(hotMs, performance.now() - t);
		}
		console.log(`lineage memory: downstream depth 5 of the 20 most used dataset versions: max ${f(hotMs)} ms, up to ${hotNodes} nodes`);
		// Measured p99 is under 1 ms on 2 cores: a wide margin under the 50 ms target.
		assert.ok(percentile(both, 99) <= 50, `p99 ${percentile(both, 99)} ms > 50 ms`);
	});
});
