import type { ServiceBroker } from "moleculer";
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { NatsAuthority } from "../../lib/nats-auth";
import type { ProgressView } from "../../services/telemetry/progress";
import type { FloodCommand } from "./flooder";
import type { SidecarConnection } from "./sidecar";

/** The rogue producer of the malformed-flood drill, in a child process (see flooder.ts). */
export class Flooder {
	private constructor(
		private readonly child: ChildProcess,
		private readonly died: Promise<never>,
	) {}

	static async start(url: string, authority: NatsAuthority, workspace: string, runId: string): Promise<Flooder> {
		const { creds } = await authority.runCreds({ workspace, runId, attempt: 1, ttlSec: 600 });
		const child = fork(join(__dirname, "flooder.js"), [url, workspace, runId], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
		const died = new Promise<never>((_r, reject) => child.once("exit", (code) => reject(new Error(`the flooder exited (code ${code})`))));
		died.catch(() => undefined);
		const flooder = new Flooder(child, died);
		child.send({ creds });
		await flooder.reply();
		return flooder;
	}

	private reply<T>(): Promise<T> {
		return Promise.race([new Promise<T>((r) => this.child.once("message", r as never)), this.died]);
	}

	/** Resolves with the number of malformed messages JetStream stored. */
	async flood(c: FloodCommand): Promise<number> {
		this.child.send(c);
		return (await this.reply<{ flooded: number }>()).flooded;
	}

	async stop(): Promise<void> {
		if (this.child.exitCode !== null || this.child.signalCode !== null) return;
		const exited = new Promise((r) => this.child.once("exit", r));
		this.child.send({ exit: true });
		await exited;
	}
}

/**
 * One round of the drill: valid sidecars send `perRun` heartbeats each through their outboxes, as fast as their
 * acknowledgements allow, and the round lasts until the telemetry service's view shows every one of them. With a
 * flooder, `floodPerValid` malformed messages per valid heartbeat go into the same stream and durable at the same
 * time, as fast as JetStream acknowledges them.
 */
export interface FloodRound {
	broker: ServiceBroker;
	valid: SidecarConnection[];
	perRun: number;
	flooder?: Flooder;
	floodPerValid: number;
	/** Flood messages awaiting their acknowledgement at once. */
	window: number;
	/** Distinguishes the rounds' message ids (JetStream would de-duplicate a repeat). */
	round: number;
}

export interface FloodRoundResult {
	/** Valid heartbeats per second, from the first send until the view showed the last one. */
	validPerSec: number;
	ms: number;
	/** Malformed messages stored by JetStream during the round. */
	flooded: number;
}

function heartbeats(broker: ServiceBroker, runId: string): Promise<number> {
	return broker.call<ProgressView, object>("telemetry.progress", { run_id: runId }).then(
		(p) => p.heartbeats,
		() => 0,
	);
}

export async function floodRound(o: FloodRound): Promise<FloodRoundResult> {
	const before = await Promise.all(o.valid.map((s) => heartbeats(o.broker, s.runId)));
	const total = o.valid.length * o.perRun;
	const started = performance.now();
	const flood = o.flooder?.flood({ count: total * o.floodPerValid, window: o.window, round: o.round }) ?? Promise.resolve(0);
	for (const s of o.valid) for (let i = 0; i < o.perRun; i++) s.out.send("heartbeat", { metrics: { loss: 1 / (i + 1) } });
	for (;;) {
		const seen = await Promise.all(o.valid.map((s) => heartbeats(o.broker, s.runId)));
		if (seen.every((n, i) => n - before[i]! >= o.perRun)) break;
		await new Promise((r) => setTimeout(r, 5));
	}
	const ms = performance.now() - started;
	return { validPerSec: (total / ms) * 1000, ms, flooded: await flood };
}

/**
 * Heartbeats as sidecars really send them, at a steady beat: every `tickMs` each valid sidecar sends one, and the
 * flooder (when given) `floodPerValid` malformed messages per valid one in the same tick. Each valid heartbeat's
 * latency runs from its send until the telemetry view counts it (polled every 5 ms).
 */
export interface PacedRound {
	broker: ServiceBroker;
	valid: SidecarConnection[];
	ticks: number;
	tickMs: number;
	flooder?: Flooder;
	floodPerValid: number;
	round: number;
}

export interface PacedRoundResult {
	p50Ms: number;
	p90Ms: number;
	flooded: number;
}

export async function pacedRound(o: PacedRound): Promise<PacedRoundResult> {
	const before = await Promise.all(o.valid.map((s) => heartbeats(o.broker, s.runId)));
	const sentAt: number[][] = o.valid.map(() => []);
	const latencies: number[] = [];
	const perTick = o.valid.length * o.floodPerValid;
	const flood = o.flooder?.flood({ count: o.ticks * perTick, window: perTick, round: o.round, tickMs: o.tickMs }) ?? Promise.resolve(0);
	const started = performance.now();
	const sending = (async () => {
		for (let tick = 1; tick <= o.ticks; tick++) {
			o.valid.forEach((s, i) => {
				sentAt[i]!.push(performance.now());
				s.out.send("heartbeat", { metrics: { loss: 1 / tick } });
			});
			await new Promise((r) => setTimeout(r, Math.max(0, started + tick * o.tickMs - performance.now())));
		}
	})();
	const seen = o.valid.map(() => 0);
	while (seen.some((n) => n < o.ticks)) {
		await new Promise((r) => setTimeout(r, 5));
		const counts = await Promise.all(o.valid.map((s) => heartbeats(o.broker, s.runId)));
		const now = performance.now();
		counts.forEach((count, i) => {
			for (; seen[i]! < count - before[i]!; seen[i]!++) latencies.push(now - sentAt[i]![seen[i]!]!);
		});
	}
	await sending;
	latencies.sort((a, b) => a - b);
	const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
	return { p50Ms: at(0.5), p90Ms: at(0.9), flooded: await flood };
}
