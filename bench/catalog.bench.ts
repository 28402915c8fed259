/**
 * Catalog benchmark on the embedded adapters, each against a same-run baseline of the bare library underneath:
 *   - lineage: upstream/downstream at depth 5 from 1,000 random nodes of a 100,000-node graph, the port (time and
 *     workspace filters, cycle-safety, graph assembly) vs a bare breadth-first walk over the same graphology graph;
 *   - search: 100,000 documents, indexing docs/s and queries/s through the port (workspace filter, facets,
 *     highlights, stable order) vs bare MiniSearch with the same fields, boosts and fuzziness;
 *   - indexing from events: run events published to JetStream and indexed by the catalog service (KV
 *     compare-and-set, search and lineage), vs the same events through a durable consumer with a no-op handler.
 * Usage: npm run bench:catalog [-- --rounds 3]
 */
import { DirectedGraph } from "graphology";
import { ServiceBroker } from "moleculer";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { RunTransitioned } from "../events/catalog";
import { defineConsumer } from "../events/consumers";
import { STREAMS } from "../events/streams";
import type { Bus } from "../lib/bus";
import { loadConfig } from "../lib/config";
import { busOf } from "../lib/moleculer/bus.middleware";
import { DurableEventsMixin, onEvent } from "../lib/moleculer/durable-events.mixin";
import { defaultNatsServerBin, startEmbeddedNats } from "../lib/nats-server";
import { platformSchemas } from "../lib/schemas";
import { brokerOptions } from "../moleculer.config";
import { catalogService } from "../services/catalog/catalog.service";
import type { AnyServiceSchema } from "../services/index";
import MiniSearch from "minisearch";
import { cpus, tmpdir } from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { MemoryLineage } from "../services/catalog/lineage/memory-lineage";
import { MemorySearch } from "../services/catalog/search/memory-search";
import { BOOSTS, type SearchDocument } from "../services/catalog/search/search-port";
import { lineageGraph, mulberry32, pick, searchDocuments } from "./catalog-data";
import { drained, median, percentile } from "./support";

const { values: args } = parseArgs({ options: { rounds: { type: "string", default: "3" } } });
const ROUNDS = Number(args.rounds);
const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

/** The baseline walk: adjacency only, a visited set and a depth bound. */
function bareWalk(g: DirectedGraph, id: string, depth: number, up: boolean): number {
	const seen = new Set([id]);
	let frontier = [id];
	for (let level = 0; level < depth && frontier.length; level++) {
		const next: string[] = [];
		for (const n of frontier) for (const m of up ? g.inNeighbors(n) : g.outNeighbors(n)) if (!seen.has(m)) seen.add(m), next.push(m);
		frontier = next;
	}
	return seen.size;
}

async function lineage(): Promise<{ port: number[]; bare: number[]; buildMs: number }> {
	const { nodes, edges } = lineageGraph();
	const t0 = performance.now();
	const g = new MemoryLineage();
	for (const n of nodes) await g.upsertNode(n);
	for (const e of edges) await g.addEdge(e);
	const buildMs = performance.now() - t0;
	const graph = new DirectedGraph();
	for (const n of nodes) graph.addNode(n.id);
	for (const e of edges) graph.mergeEdge(e.from, e.to);
	const rand = mulberry32(7);
	const starts = Array.from({ length: 1_000 }, () => nodes[Math.floor(rand() * nodes.length)]!.id);
	const port: number[] = [];
	const bare: number[] = [];
	for (let round = 0; round < ROUNDS; round++) {
		for (const id of starts) {
			for (const up of [true, false]) {
				let t = performance.now();
				bareWalk(graph, id, 5, up);
				bare.push(performance.now() - t);
				t = performance.now();
				await (up ? g.upstream(id, { depth: 5 }) : g.downstream(id, { depth: 5 }));
				port.push(performance.now() - t);
			}
		}
	}
	return { port, bare, buildMs };
}

function bareIndex(): MiniSearch<SearchDocument> {
	return new MiniSearch<SearchDocument>({
		fields: ["name", "description", "tags", "fields"],
		extractField: (doc, field) => {
			const v = (doc as unknown as Record<string, unknown>)[field];
			return Array.isArray(v) ? v.join(" ") : v;
		},
	});
}

async function search(): Promise<Record<"portIndex" | "bareIndex" | "portQuery" | "bareQuery", number[]>> {
	const docs = searchDocuments(100_000);
	const out = { portIndex: [] as number[], bareIndex: [] as number[], portQuery: [] as number[], bareQuery: [] as number[] };
	const queries = Array.from({ length: 300 }, (_, i) => (i % 5 === 0 ? `${pick(i, 10)}x` : `${pick(i, 10)} ${pick(i, 11)}`));
	for (let round = 0; round < ROUNDS; round++) {
		let t = performance.now();
		const bare = bareIndex();
		bare.addAll(docs);
		out.bareIndex.push(docs.length / ((performance.now() - t) / 1000));
		t = performance.now();
		const port = new MemorySearch();
		for (let i = 0; i < docs.length; i += 5_000) await port.upsert(docs.slice(i, i + 5_000));
		out.portIndex.push(docs.length / ((performance.now() - t) / 1000));

		t = performance.now();
		for (const text of queries) bare.search(text, { boost: { ...BOOSTS }, fuzzy: 0.2 }).slice(0, 20);
		out.bareQuery.push(queries.length / ((performance.now() - t) / 1000));
		t = performance.now();
		for (const text of queries) await port.search({ text, workspaces: ["ws-1", "ws-2", "ws-3"], limit: 20, offset: 0 });
		out.portQuery.push(queries.length / ((performance.now() - t) / 1000));
		await port.close();
	}
	return out;
}

/** Run events as the execution service publishes them: QUEUED, RUNNING, SUCCEEDED for each run. */
function runEvents(round: number, runs: number): RunTransitioned[] {
	const out: RunTransitioned[] = [];
	for (let i = 0; i < runs; i++) {
		const id = `run-r${round}-${i}`;
		const at = (s: number) => new Date(1_750_000_000_000 + i * 1000 + s).toISOString();
		for (const [from, to, s] of [["PENDING", "QUEUED", 0], ["QUEUED", "RUNNING", 1], ["RUNNING", "SUCCEEDED", 2]] as const) {
			out.push({
				run_id: id,
				workspace: `ws-${i % 20}`,
				from,
				to,
				attempt: 1,
				at: at(s),
				run: { id, workspace: `ws-${i % 20}`, status: to, attempt: 1, trace_id: `t-${i}`, command: ["train"], created_at: at(0), metrics: { loss: 0.1 }, artifacts: [] },
			});
		}
	}
	return out;
}

/** Publishes `events` (256 outstanding) and waits until `durable` has handled all of them: events/s end to end. */
async function indexRate(bus: Bus, durable: string, events: RunTransitioned[]): Promise<number> {
	const t = performance.now();
	const pending = new Set<Promise<unknown>>();
	for (const e of events) {
		const p = bus.publisher.publish(RunTransitioned, e, { msgId: `${e.run_id}:${e.attempt}:${e.to}` });
		pending.add(p);
		void p.finally(() => pending.delete(p));
		if (pending.size >= 256) await Promise.race(pending);
	}
	await Promise.all(pending);
	await drained(bus.jsm, STREAMS.events.name, durable);
	return events.length / ((performance.now() - t) / 1000);
}

const RUNS_PER_ROUND = 2_000;

/** One broker per measurement, alternating: the other path's durable is not bound meanwhile (its backlog is cleared, untimed, when it next starts). */
async function eventIndexing(): Promise<{ catalog: number[]; noop: number[] }> {
	const dir = mkdtempSync(join(tmpdir(), "savassan-bench-catalog-"));
	const nats = await startEmbeddedNats({ bin: defaultNatsServerBin(), dir });
	const config = loadConfig({ NODE_ID: "bench-catalog", LOG_LEVEL: "warn", DATA_DIR: dir }, []);
	const noop = defineConsumer("benchnoop", RunTransitioned);
	const paths = {
		noop: { durable: noop.durable, service: () => ({ name: "benchnoop", mixins: [DurableEventsMixin], durableEvents: [onEvent(noop, () => undefined)] }) as AnyServiceSchema },
		catalog: { durable: defineConsumer("catalog", RunTransitioned).durable, service: () => catalogService(config) as AnyServiceSchema },
	};
	const out = { catalog: [] as number[], noop: [] as number[] };
	try {
		for (let round = 1; round <= ROUNDS; round++) {
			const order = round % 2 ? (["noop", "catalog"] as const) : (["catalog", "noop"] as const);
			for (const [i, name] of order.entries()) {
				const broker = new ServiceBroker(brokerOptions(config, { servers: [nats.url] }, platformSchemas()));
				broker.createService(paths[name].service());
				await broker.start();
				try {
					const bus = busOf(broker);
					await drained(bus.jsm, STREAMS.events.name, paths[name].durable);
					out[name].push(await indexRate(bus, paths[name].durable, runEvents(round * 2 + i, RUNS_PER_ROUND)));
				} finally {
					await broker.stop();
				}
			}
		}
	} finally {
		await nats.stop();
		rmSync(dir, { recursive: true, force: true });
	}
	return out;
}

async function main(): Promise<void> {
	console.log(`Node ${process.version}, ${cpus().length} cores; ${ROUNDS} rounds\n`);
	const l = await lineage();
	const s = await search();
	const e = await eventIndexing();
	const p99 = percentile(l.port, 99);
	console.log("| measure | result | same-run baseline | ratio | target |");
	console.log("|---|---|---|---|---|");
	console.log(`| lineage: build 100,000 nodes, ${fmt(lineageGraph().edges.length)} edges | ${fmt(l.buildMs)} ms | | | |`);
	console.log(
		`| lineage up/downstream, depth 5, ${fmt(l.port.length)} walks | p50 ${fmt(percentile(l.port, 50), 3)} ms, **p99 ${fmt(p99, 3)} ms**, max ${fmt(Math.max(...l.port), 1)} ms | bare BFS p50 ${fmt(percentile(l.bare, 50), 3)} ms, p99 ${fmt(percentile(l.bare, 99), 3)} ms | p99 time ${(percentile(l.port, 99) / percentile(l.bare, 99)).toFixed(2)} × bare | p99 ≤ 50 ms: ${p99 <= 50 ? "met" : "not met"} |`,
	);
	console.log(`| search: indexing 100,000 documents | ${fmt(median(s.portIndex))} docs/s | bare MiniSearch ${fmt(median(s.bareIndex))} docs/s | ${(median(s.portIndex) / median(s.bareIndex)).toFixed(2)} × | |`);
	console.log(
		`| indexing from events: ${fmt(RUNS_PER_ROUND * 3)} run events per round into the catalog service | ${fmt(median(e.catalog))} events/s | events layer, no-op handler: ${fmt(median(e.noop))} events/s | ${(median(e.catalog) / median(e.noop)).toFixed(2)} × | |`,
	);
	console.log(`| search: queries on 100,000 documents (1 in 5 with a typo) | ${fmt(median(s.portQuery))} queries/s | bare MiniSearch ${fmt(median(s.bareQuery))} queries/s | ${(median(s.portQuery) / median(s.bareQuery)).toFixed(2)} × | |`);
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
