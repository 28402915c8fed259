/**
 * Live fan-out: run updates to 2,000 WebSocket clients at 200 msg/s.
 * - baseline: a bare uWebSockets.js app, every client subscribed to one topic, `app.publish` from a timer;
 * - platform: heartbeats published to TELEMETRY → the gateway's `/v1/live` feed of `run:<id>` → the same clients.
 * The clients live in child processes (bench/live-clients.ts) and count deliveries/s and publish → receipt latency.
 * The frames are the same in both (the event frame of a heartbeat), so only the path differs.
 *
 * Usage: node dist/bench/live.bench.js [--clients 2000] [--rate 200] [--seconds 10] [--warmup 3] [--procs 2] [--rounds 3]
 */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { subjects } from "../events/subjects";
import { busOf } from "../lib/moleculer/bus.middleware";
import { loadUws } from "../lib/uws";
import type { Run } from "../services/execution/run";
import { eventFrame } from "../services/gateway/live/protocol";
import { startEdgePlatform } from "../test/support/edge-platform";
import { waitFor } from "../test/support/wait";
import type { ClientsTarget, WindowResult } from "./live-clients";
import { median } from "./support";

const { values: args } = parseArgs({
	options: {
		clients: { type: "string", default: "2000" },
		rate: { type: "string", default: "200" },
		seconds: { type: "string", default: "10" },
		warmup: { type: "string", default: "3" },
		procs: { type: "string", default: "2" },
		rounds: { type: "string", default: "3" },
	},
});
const CLIENTS = Number(args.clients);
const RATE = Number(args.rate);
const MEASURE_MS = Number(args.seconds) * 1000;
const WARMUP_MS = Number(args.warmup) * 1000;
const PROCS = Number(args.procs);
const ROUNDS = Number(args.rounds);

const wallNow = () => performance.timeOrigin + performance.now();

interface Figures {
	deliveriesPerSec: number;
	p50: number;
	p99: number;
	closed: number;
}

/** A heartbeat of the run, stamped with its publish time. */
function heartbeat(run: { id: string; workspace: string }, seq: number) {
	return { run_id: run.id, workspace: run.workspace, attempt: 1, seq, at: new Date().toISOString(), progress: { epoch: 1, epochs: 10, step: seq, steps: 1_000_000 }, metrics: { loss: 0.5, accuracy: 0.8, sent_at: wallNow() } };
}

/** Calls `publish` RATE times a second (catching up on timer lateness) until stopped. */
function paced(publish: (seq: number) => void): () => void {
	const started = performance.now();
	let sent = 0;
	const timer = setInterval(() => {
		const due = Math.floor(((performance.now() - started) * RATE) / 1000);
		while (sent < due) publish(sent++);
	}, 5);
	return () => clearInterval(timer);
}

function startClients(target: Omit<ClientsTarget, "n">): Promise<ChildProcess[]> {
	const per = Math.ceil(CLIENTS / PROCS);
	return Promise.all(
		Array.from({ length: PROCS }, (_, i) => {
			const n = Math.min(per, CLIENTS - i * per);
			const child = fork(join(__dirname, "live-clients.js"), [JSON.stringify({ ...target, n })], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
			return new Promise<ChildProcess>((resolve, reject) => {
				child.once("message", () => resolve(child));
				child.once("exit", (code) => reject(new Error(`client process exited with ${code} before it was ready`)));
			});
		}),
	);
}

async function measure(children: ChildProcess[]): Promise<Figures> {
	await new Promise((r) => setTimeout(r, WARMUP_MS));
	const results = await Promise.all(
		children.map(
			(c) =>
				new Promise<WindowResult>((resolve) => {
					c.once("message", (m) => resolve(m as WindowResult));
					c.send({ ms: MEASURE_MS });
				}),
		),
	);
	const histogram = new Map<number, number>();
	for (const r of results) for (const [b, n] of r.histogram) histogram.set(b, (histogram.get(b) ?? 0) + n);
	const total = results.reduce((s, r) => s + r.deliveries, 0);
	const rank = (p: number) => {
		let seen = 0;
		for (const [b, n] of [...histogram].sort((x, y) => x[0] - y[0])) if ((seen += n) >= Math.ceil((p / 100) * total)) return b / 10;
		return NaN;
	};
	const seconds = Math.max(...results.map((r) => r.ms)) / 1000;
	return { deliveriesPerSec: total / seconds, p50: rank(50), p99: rank(99), closed: results.reduce((s, r) => s + r.closed, 0) };
}

const stopChildren = (children: ChildProcess[]) => children.forEach((c) => c.pid && c.kill());

/** A path under test: its clients connected, `start` begins publishing at RATE and returns how to stop. */
interface Path {
	name: string;
	children: ChildProcess[];
	start(): () => void;
	close(): Promise<void>;
}

async function baseline(): Promise<Path> {
	const uws = loadUws();
	const app = uws.App().ws("/raw", { maxBackpressure: 1024 * 1024, idleTimeout: 60, open: (ws) => void ws.subscribe("run") });
	const listen = await new Promise<unknown>((resolve) => app.listen("127.0.0.1", 0, resolve));
	const port = uws.us_socket_local_port(listen as never);
	const children = await startClients({ url: `ws://127.0.0.1:${port}/raw`, headers: {} });
	console.log(`baseline: ${CLIENTS} clients connected`);
	const run = { id: "bench-run", workspace: "bench" };
	return {
		name: "raw uWS app.publish (baseline)",
		children,
		start: () => paced((seq) => app.publish("run", eventFrame("run:bench-run", seq + 1, "epoch", "heartbeat", heartbeat(run, seq)), false)),
		async close() {
			stopChildren(children);
			uws.us_listen_socket_close(listen as never);
		},
	};
}

async function platform(): Promise<Path> {
	const p = await startEdgePlatform("live-bench", { live: { maxBufferedBytes: 1024 * 1024, idleTimeoutSec: 60 } }, { LOG_LEVEL: "warn" });
	const children: ChildProcess[] = [];
	const close = async () => {
		stopChildren(children);
		await p.close();
	};
	try {
		const run = await p.broker.call<Run, object>("execution.submit", { workspace: "bench", command: [process.execPath, "-e", "0"] });
		await waitFor("the bench run to finish", async () => (await p.broker.call<Run, object>("execution.get", { id: run.id })).status === "SUCCEEDED", 30_000);
		children.push(...(await startClients({ url: `${p.url.replace(/^http/, "ws")}/v1/live`, headers: { authorization: `Bearer ${p.admin.access_token}` }, topic: `run:${run.id}` })));
		console.log(`platform: ${CLIENTS} clients subscribed to run:${run.id}`);
		const js = busOf(p.broker).js;
		const subject = subjects.telemetry(run.workspace, run.id, "heartbeat");
		return {
			name: "NATS TELEMETRY → gateway /v1/live",
			children,
			start: () => paced((seq) => void js.publish(subject, JSON.stringify(heartbeat(run, seq))).catch((err) => console.warn(`publish failed: ${err.message}`))),
			close,
		};
	} catch (err) {
		await close();
		throw err;
	}
}

async function main(): Promise<void> {
	console.log(`live fan-out: ${CLIENTS} clients in ${PROCS} processes per path, ${RATE} msg/s, ${ROUNDS} rounds of ${MEASURE_MS / 1000} s after ${WARMUP_MS / 1000} s warm-up, paths interleaved`);
	const paths: Path[] = [];
	try {
		paths.push(await baseline(), await platform());
		const figures = new Map<Path, Figures[]>(paths.map((p) => [p, []]));
		for (let round = 0; round < ROUNDS; round++) {
			for (const path of round % 2 ? [...paths].reverse() : paths) {
				const stop = path.start();
				const f = await measure(path.children).finally(stop);
				figures.get(path)!.push(f);
				console.log(`round ${round + 1} ${path.name}: ${Math.round(f.deliveriesPerSec)}/s p50 ${f.p50} ms p99 ${f.p99} ms`);
				await new Promise((r) => setTimeout(r, 1_000)); // let the last messages drain
			}
		}
		const med = (path: Path, key: keyof Figures) => median(figures.get(path)!.map((f) => f[key]));
		console.log("| path | deliveries/s (median) | expected/s | p50 ms | p99 ms | sockets closed |");
		console.log("|---|---|---|---|---|---|");
		for (const path of paths) {
			console.log(`| ${path.name} | ${Math.round(med(path, "deliveriesPerSec")).toLocaleString("en")} | ${(CLIENTS * RATE).toLocaleString("en")} | ${med(path, "p50").toFixed(1)} | ${med(path, "p99").toFixed(1)} | ${Math.max(...figures.get(path)!.map((f) => f.closed))} |`);
		}
		console.log(`ratio (platform / baseline deliveries/s): ${(med(paths[1]!, "deliveriesPerSec") / med(paths[0]!, "deliveriesPerSec")).toFixed(2)} × (target ≥ 0.8 ×)`);
	} finally {
		for (const path of paths) await path.close();
	}
}

main().then(
	() => process.exit(0),
	(err) => {
		console.error(err);
		process.exit(1);
	},
);
