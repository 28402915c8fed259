/**
 * Bus benchmark: every figure is compared with a baseline measured in the same run, rounds interleaved, medians
 * reported, because these machines are noisy.
 *   - request/reply: raw NATS (nats v2, the transporter's client) vs Moleculer with only the NATS transporter vs
 *     the platform's broker (bus + JSON Schema validation + pino), at 1 and 64 calls in flight;
 *   - durable events: raw JetStream publish + pull-consume + ack vs the events layer (schema check, id/trace
 *     headers, DurableConsumer with dead-letter handling), 256 publishes outstanding.
 * Usage: npm run bench [-- --rounds 7 --seconds 2 --events 20000]
 */
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect as connectV3 } from "@nats-io/transport-node";
import { fork } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { connect as connectV2, createInbox, JSONCodec } from "nats";
import { AckedPublisher } from "../events/acked-publisher";
import { defineConsumer } from "../events/consumers";
import { DurableConsumer, exponentialBackoff } from "../events/consume";
import { defineEvent } from "../events/definition";
import { EventPublisher } from "../events/publish";
import { STREAMS, ensureStreams } from "../events/streams";
import { defaultNatsServerBin, startEmbeddedNats } from "../lib/nats-server";
import { ECHO, bareBroker, benchSchemas, median, platformBroker } from "./support";

const { values: args } = parseArgs({
	options: {
		rounds: { type: "string", default: "7" },
		seconds: { type: "string", default: "2" },
		events: { type: "string", default: "20000" },
	},
});
const ROUNDS = Number(args.rounds);
const DURATION_MS = Number(args.seconds) * 1000;
const EVENTS = Number(args.events);
const WINDOW = 256;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

interface LoopResult {
	perSec: number;
	p50: number;
	p99: number;
}

function shuffled<T>(xs: T[]): T[] {
	const out = [...xs];
	for (let i = out.length - 1; i > 0; i--) {
		const j = Math.floor(Math.random() * (i + 1));
		[out[i], out[j]] = [out[j]!, out[i]!];
	}
	return out;
}

/** `concurrency` callers in a closed loop for `ms`. */
async function closedLoop(call: () => Promise<unknown>, concurrency: number, ms: number): Promise<LoopResult> {
	const latencies: number[] = [];
	const end = performance.now() + ms;
	const started = performance.now();
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (performance.now() < end) {
				const t = performance.now();
				await call();
				latencies.push(performance.now() - t);
			}
		}),
	);
	const elapsed = performance.now() - started;
	return { perSec: (latencies.length / elapsed) * 1000, p50: pct(latencies, 0.5), p99: pct(latencies, 0.99) };
}

/** Runs fn(0..n-1) keeping `window` calls outstanding. */
async function pipelined(n: number, window: number, fn: (i: number) => Promise<unknown>): Promise<void> {
	let next = 0;
	await Promise.all(
		Array.from({ length: window }, async () => {
			while (next < n) await fn(next++);
		}),
	);
}

async function main(): Promise<void> {
	const dir = mkdtempSync(join(tmpdir(), "savassan-bench-"));
	const bin = defaultNatsServerBin();
	const nats = await startEmbeddedNats({ bin, dir });
	const responder = fork(join(__dirname, "responder.js"), [nats.url], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
	try {
		const ready = await new Promise<{ subject: string }>((resolve) => responder.once("message", resolve));
		const rows: string[] = [];

		// --- request/reply ---------------------------------------------------------------------------------------
		const nc2 = await connectV2({ servers: nats.url });
		const codec = JSONCodec();
		const bare = bareBroker(nats.url, "bare-caller");
		const platform = platformBroker(nats.url, "platform-caller");
		await Promise.all([bare.start(), platform.start()]);
		await Promise.all([bare.waitForServices("bench"), platform.waitForServices("bench")]);
		// The floor: one wildcard reply subscription, no per-request timer (how Moleculer's transit works).
		const inbox = createInbox();
		const waiting = new Map<string, () => void>();
		let nextToken = 0;
		nc2.subscribe(`${inbox}.*`, { callback: (_e, m) => waiting.get(m.subject)?.() });
		const muxed = () =>
			new Promise<void>((resolve) => {
				const reply = `${inbox}.${nextToken++}`;
				waiting.set(reply, () => {
					waiting.delete(reply);
					resolve();
				});
				nc2.publish(ready.subject, codec.encode(ECHO), { reply });
			});
		const calls = {
			raw: () => nc2.request(ready.subject, codec.encode(ECHO), { timeout: 10_000 }),
			muxed,
			bare: () => bare.call("bench.echo", ECHO),
			platform: () => platform.call("bench.echo", ECHO),
		};
		for (const concurrency of [1, 64]) {
			for (const call of Object.values(calls)) await closedLoop(call, concurrency, 300); // warm-up
			const results: Record<keyof typeof calls, LoopResult[]> = { raw: [], muxed: [], bare: [], platform: [] };
			for (let r = 0; r < ROUNDS; r++) {
				// A different order each round, so that no path always follows the same neighbour.
				for (const [name, call] of shuffled(Object.entries(calls))) {
					results[name as keyof typeof calls].push(await closedLoop(call, concurrency, DURATION_MS));
				}
			}
			const m = (k: keyof typeof calls) => ({
				perSec: median(results[k].map((x) => x.perSec)),
				p50: median(results[k].map((x) => x.p50)),
				p99: median(results[k].map((x) => x.p99)),
			});
			const raw = m("raw");
			const b = m("bare");
			const p = m("platform");
			const fmt = (x: LoopResult) => `${Math.round(x.perSec).toLocaleString("en")}/s (p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms)`;
			const mx = m("muxed");
			rows.push(`| raw NATS request/reply (\`nc.request\`), ${concurrency} in flight | ${fmt(raw)} | 1.00 (baseline) | |`);
			rows.push(`| raw NATS, one reply subscription, no timers, ${concurrency} in flight | ${fmt(mx)} | ${(mx.perSec / raw.perSec).toFixed(2)} × raw | |`);
			rows.push(`| Moleculer, bare NATS transporter, ${concurrency} in flight | ${fmt(b)} | ${(b.perSec / raw.perSec).toFixed(2)} × raw | |`);
			const ratio = p.perSec / b.perSec;
			rows.push(
				`| Savassan broker action (bus + schema validation), ${concurrency} in flight | ${fmt(p)} | **${ratio.toFixed(2)} × bare Moleculer** (${(p.perSec / raw.perSec).toFixed(2)} × raw) | ≥ 0.8 × bare: ${ratio >= 0.8 ? "met" : "NOT met"} |`,
			);
		}
		await Promise.all([bare.stop(), platform.stop()]);
		await nc2.close();

		// --- durable events --------------------------------------------------------------------------------------
		const nc = await connectV3({ servers: nats.url });
		const js = jetstream(nc);
		const jsm = await jetstreamManager(nc);
		await ensureStreams(jsm, { replicas: 1 });
		const Item = defineEvent<{ id: number; name: string }>("bench", "item", "created");
		const layered = defineConsumer("bench", Item);
		const acked = new AckedPublisher(nc);
		const publisher = new EventPublisher(acked, benchSchemas);
		const quiet = { debug() {}, info() {}, warn() {}, error: console.error };

		type RawPublish = (subject: string, data: string) => Promise<unknown>;
		const viaClient: RawPublish = (subject, data) => js.publish(subject, data);
		const viaAcked: RawPublish = (subject, data) => acked.publish(subject, data);

		async function rawRound(publish: RawPublish): Promise<number> {
			await jsm.streams.purge(STREAMS.events.name);
			await jsm.consumers.add(STREAMS.events.name, { durable_name: "bench_raw", ack_policy: AckPolicy.Explicit, filter_subject: Item.subject });
			const consumer = await js.consumers.get(STREAMS.events.name, "bench_raw");
			const messages = await consumer.consume({ max_messages: 64 });
			const t0 = performance.now();
			const done = (async () => {
				let n = 0;
				for await (const m of messages) {
					JSON.parse(new TextDecoder().decode(m.data));
					m.ack();
					if (++n === EVENTS) break;
				}
			})();
			await pipelined(EVENTS, WINDOW, (i) => publish(Item.subject, JSON.stringify({ id: i, name: `item ${i}` })));
			await done;
			const elapsed = performance.now() - t0;
			await messages.close();
			await jsm.consumers.delete(STREAMS.events.name, "bench_raw");
			return (EVENTS / elapsed) * 1000;
		}

		async function layeredRound(): Promise<number> {
			await jsm.streams.purge(STREAMS.events.name);
			let n = 0;
			let finish!: () => void;
			const done = new Promise<void>((r) => (finish = r));
			const consumer = new DurableConsumer({ js, jsm, acked }, {
				stream: Item.stream,
				durable: layered.durable,
				filterSubject: Item.subject,
				validate: benchSchemas.validator(Item.schemaId),
				maxDeliveries: 5,
				ackWaitMs: 30_000,
				retryDelay: exponentialBackoff(500),
				prefetch: 64,
				log: quiet,
				handler: () => {
					if (++n === EVENTS) finish();
				},
			});
			await consumer.start();
			const t0 = performance.now();
			await pipelined(EVENTS, WINDOW, (i) => publisher.publish(Item, { id: i, name: `item ${i}` }, { msgId: `bench-${i}-${t0}` }));
			await done;
			const elapsed = performance.now() - t0;
			await consumer.stop();
			await jsm.consumers.delete(STREAMS.events.name, layered.durable);
			return (EVENTS / elapsed) * 1000;
		}

		await rawRound(viaClient);
		await rawRound(viaAcked);
		await layeredRound(); // warm-up
		const raw: number[] = [];
		const rawAcked: number[] = [];
		const lay: number[] = [];
		for (let r = 0; r < ROUNDS; r++) {
			raw.push(await rawRound(viaClient));
			rawAcked.push(await rawRound(viaAcked));
			lay.push(await layeredRound());
		}
		const ratio = median(lay) / median(raw);
		const perSec = (xs: number[]) => `${Math.round(median(xs)).toLocaleString("en")} events/s end to end`;
		rows.push(`| raw JetStream: \`js.publish\` (${WINDOW} outstanding) + pull consume + ack, ${EVENTS.toLocaleString("en")} events | ${perSec(raw)} | 1.00 (baseline) | |`);
		rows.push(`| raw JetStream: AckedPublisher (no schema, no headers) + pull consume + ack | ${perSec(rawAcked)} | ${(median(rawAcked) / median(raw)).toFixed(2)} × raw | |`);
		rows.push(
			`| events layer: EventPublisher (schema, id, trace) + DurableConsumer | ${perSec(lay)} | **${ratio.toFixed(2)} × raw** (${(median(lay) / median(rawAcked)).toFixed(2)} × AckedPublisher raw) | ≥ 0.7 × raw: ${ratio >= 0.7 ? "met" : "NOT met"} |`,
		);
		acked.close();
		await nc.close();

		const natsVersion = execFileSync(bin, ["--version"]).toString().trim();
		console.log(
			[
				`Node ${process.version}, ${natsVersion}, ${cpus().length} cores; ${ROUNDS} interleaved rounds, medians; request/reply ${DURATION_MS / 1000} s per round`,
				"",
				"| path | result | ratio | target |",
				"|---|---|---|---|",
				...rows,
			].join("\n"),
		);
	} finally {
		responder.send({ stop: true });
		await new Promise((r) => responder.once("exit", r));
		await nats.stop();
		rmSync(dir, { recursive: true, force: true });
	}
}

void main().catch((err) => {
	console.error(err);
	process.exit(1);
});
