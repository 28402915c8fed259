/**
 * Malformed-flood benchmark (issue 8's drill with bigger numbers): valid runner sidecars (each its own connection
 * and run credential) send heartbeats into the telemetry service while a rogue producer in its own process, with a
 * run credential of its own, floods the same stream and durable with malformed messages (every other one not JSON,
 * the rest schema-invalid), 10 per valid heartbeat. Baseline in the same run: the same valid heartbeats without the
 * flood. Rounds alternate (order swapped every round), medians reported.
 *   paced:      every sidecar beats every --tick-ms, the flood keeps the ratio per tick; latency of each valid
 *               heartbeat from its send until the telemetry view counts it (what the drill asserts: ≤ 2×).
 *   saturating: every sidecar sends --per-run heartbeats as fast as its acknowledgements allow and the flood goes
 *               as fast as JetStream acknowledges it; valid heartbeats/s until the view shows the last one.
 * Usage: node dist/bench/flood.bench.js [--sidecars 8 --tick-ms 10 --ticks 300 --per-run 1000 --ratio 10 --rounds 5]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ServiceBroker } from "moleculer";
import { loadConfig } from "../lib/config";
import { NatsAuthority } from "../lib/nats-auth";
import { defaultNatsServerBin, startEmbeddedNats } from "../lib/nats-server";
import { platformSchemas } from "../lib/schemas";
import { brokerOptions } from "../moleculer.config";
import { deadLettersService } from "../services/deadletters/deadletters.service";
import type { AnyServiceSchema } from "../services/index";
import { telemetryService } from "../services/telemetry/telemetry.service";
import { Flooder, floodRound, pacedRound, type FloodRoundResult, type PacedRoundResult } from "../test/support/flood";
import { SidecarConnection } from "../test/support/sidecar";
import { median } from "./support";

const { values: args } = parseArgs({
	options: {
		sidecars: { type: "string", default: "8" },
		"tick-ms": { type: "string", default: "10" },
		ticks: { type: "string", default: "300" },
		"per-run": { type: "string", default: "1000" },
		ratio: { type: "string", default: "10" },
		window: { type: "string", default: "64" },
		rounds: { type: "string", default: "5" },
	},
});
const SIDECARS = Number(args.sidecars);
const TICK_MS = Number(args["tick-ms"]);
const TICKS = Number(args.ticks);
const PER_RUN = Number(args["per-run"]);
const RATIO = Number(args.ratio);
const WINDOW = Number(args.window);
const ROUNDS = Number(args.rounds);

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => n.toFixed(1);

/** Runs `a` and `b` once per round, the order swapped every round. */
async function interleaved<A, B>(rounds: number, a: (r: number) => Promise<A>, b: (r: number) => Promise<B>, show: (r: number, x: A, y: B) => void) {
	const as: A[] = [];
	const bs: B[] = [];
	for (let r = 0; r < rounds; r++) {
		if (r % 2) {
			bs.push(await b(r));
			as.push(await a(r));
		} else {
			as.push(await a(r));
			bs.push(await b(r));
		}
		show(r + 1, as.at(-1)!, bs.at(-1)!);
	}
	return { as, bs };
}

async function main(): Promise<void> {
	const dir = mkdtempSync(join(tmpdir(), "savassan-bench-flood-"));
	const authority = NatsAuthority.create();
	const nats = await startEmbeddedNats({ bin: defaultNatsServerBin(), dir, extraConfig: await authority.serverConfig() });
	const creds = await authority.platformCreds("bench");
	const config = loadConfig({ NODE_ID: "bench-flood", LOG_LEVEL: "warn" }, []);
	const broker = new ServiceBroker(brokerOptions(config, { servers: [nats.url], creds }, platformSchemas()));
	broker.createService(telemetryService() as AnyServiceSchema);
	broker.createService(deadLettersService() as AnyServiceSchema);
	const valid: SidecarConnection[] = [];
	let flooder: Flooder | undefined;
	let paced: { as: PacedRoundResult[]; bs: PacedRoundResult[] };
	let saturating: { as: FloodRoundResult[]; bs: FloodRoundResult[] };
	try {
		await broker.start();
		for (let i = 0; i < SIDECARS; i++) valid.push(await SidecarConnection.open(nats.url, authority, "ws-bench", `run-valid-${i}`));
		flooder = await Flooder.start(nats.url, authority, "ws-bench", "run-rogue");
		const f = flooder;

		const pacedBase = { broker, valid, ticks: TICKS, tickMs: TICK_MS, floodPerValid: RATIO };
		paced = await interleaved(
			ROUNDS,
			(r) => pacedRound({ ...pacedBase, round: r * 2 }),
			(r) => pacedRound({ ...pacedBase, flooder: f, round: r * 2 + 1 }),
			(r, x, y) =>
				console.log(`paced round ${r}: alone p50 ${ms(x.p50Ms)} ms (p90 ${ms(x.p90Ms)}) | under the flood p50 ${ms(y.p50Ms)} ms (p90 ${ms(y.p90Ms)}), ${fmt(y.flooded)} malformed`),
		);
		const satBase = { broker, valid, perRun: PER_RUN, floodPerValid: RATIO, window: WINDOW };
		saturating = await interleaved(
			ROUNDS,
			(r) => floodRound({ ...satBase, round: 1_000 + r * 2 }),
			(r) => floodRound({ ...satBase, flooder: f, round: 1_000 + r * 2 + 1 }),
			(r, x, y) => console.log(`saturating round ${r}: alone ${fmt(x.validPerSec)}/s | under the flood ${fmt(y.validPerSec)}/s, ${fmt(y.flooded)} malformed`),
		);
	} finally {
		await flooder?.stop();
		await Promise.all(valid.map((s) => s.close()));
		await broker.stop().catch(() => undefined);
		await nats.stop();
		rmSync(dir, { recursive: true, force: true });
	}

	const version = execFileSync(defaultNatsServerBin(), ["--version"]).toString().trim();
	const validRate = (SIDECARS * 1000) / TICK_MS;
	const p50 = (xs: PacedRoundResult[]) => median(xs.map((x) => x.p50Ms));
	const p90 = (xs: PacedRoundResult[]) => median(xs.map((x) => x.p90Ms));
	const rate = (xs: FloodRoundResult[]) => median(xs.map((x) => x.validPerSec));
	const pacedRatio = p50(paced.bs) / p50(paced.as);
	const satRatio = rate(saturating.as) / rate(saturating.bs);
	console.log(
		`\nNode ${process.version}, ${version}, ${cpus().length} cores; ${SIDECARS} sidecars; ${RATIO} malformed per valid heartbeat from one rogue producer in its own process; ${ROUNDS} interleaved rounds, medians\n`,
	);
	console.log("| path | result | ratio | target |");
	console.log("|---|---|---|---|");
	console.log(`| paced: ${fmt(validRate)} valid heartbeats/s (${TICKS} ticks of ${TICK_MS} ms), no flood | p50 ${ms(p50(paced.as))} ms, p90 ${ms(p90(paced.as))} ms to the telemetry view | 1.00 (baseline) | |`);
	console.log(
		`| paced, under ${fmt(validRate * RATIO)} malformed/s | p50 ${ms(p50(paced.bs))} ms, p90 ${ms(p90(paced.bs))} ms | **${pacedRatio.toFixed(2)} × the p50** | ≤ 2×: ${pacedRatio <= 2 ? "met" : "not met"} |`,
	);
	console.log(`| saturating: ${fmt(SIDECARS * PER_RUN)} valid heartbeats as fast as acknowledged, no flood | ${fmt(rate(saturating.as))} valid/s | 1.00 (baseline) | |`);
	console.log(
		`| saturating, under ${fmt(SIDECARS * PER_RUN * RATIO)} malformed as fast as acknowledged (${WINDOW} in flight) | ${fmt(rate(saturating.bs))} valid/s | ${satRatio.toFixed(2)} × slower | (in-order durable: see RESULTS) |`,
	);
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
