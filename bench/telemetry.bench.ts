/**
 * Telemetry ingestion benchmark: 1,000 simulated runner sidecars (each its own connection and run credential, in a
 * child process) publish heartbeats; measured end to end until the telemetry service has consumed and
 * acknowledged every one. Baseline in the same run: the same sidecars publishing the same heartbeats with plain
 * `js.publish` into the same stream, nothing consuming. Rounds alternate, medians reported.
 * Usage: npm run bench:telemetry [-- --sidecars 1000 --per-sidecar 100 --rounds 3]
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { fork } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { ServiceBroker } from "moleculer";
import { defineConsumer } from "../events/consumers";
import { STREAMS, ensureStreams } from "../events/streams";
import { Telemetry } from "../events/telemetry";
import { loadConfig } from "../lib/config";
import { credsAuthenticator, NatsAuthority } from "../lib/nats-auth";
import { defaultNatsServerBin, startEmbeddedNats } from "../lib/nats-server";
import { platformSchemas } from "../lib/schemas";
import { brokerOptions } from "../moleculer.config";
import type { AnyServiceSchema } from "../services/index";
import { telemetryService } from "../services/telemetry/telemetry.service";
import { drained, median } from "./support";

const { values: args } = parseArgs({
	options: {
		sidecars: { type: "string", default: "1000" },
		"per-sidecar": { type: "string", default: "100" },
		window: { type: "string", default: "50" },
		rounds: { type: "string", default: "3" },
	},
});
const SIDECARS = Number(args.sidecars);
const PER_SIDECAR = Number(args["per-sidecar"]);
const WINDOW = Number(args.window);
const ROUNDS = Number(args.rounds);
const TOTAL = SIDECARS * PER_SIDECAR;

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

async function main(): Promise<void> {
	const dir = mkdtempSync(join(tmpdir(), "savassan-bench-tlm-"));
	const authority = NatsAuthority.create();
	const nats = await startEmbeddedNats({ bin: defaultNatsServerBin(), dir, extraConfig: await authority.serverConfig() });
	const creds = await authority.platformCreds("bench");
	const nc = await connect({ servers: nats.url, authenticator: credsAuthenticator(creds) });
	const jsm = await jetstreamManager(nc);
	await ensureStreams(jsm, { replicas: 1 });

	const sidecars = await Promise.all(
		Array.from({ length: SIDECARS }, async (_x, i) => {
			const workspace = `ws-${i % 10}`;
			const runId = `run-bench-${i}`;
			return { workspace, runId, creds: (await authority.runCreds({ workspace, runId, attempt: 1, ttlSec: 3_600 })).creds };
		}),
	);
	const credsFile = join(dir, "sidecars.json");
	writeFileSync(credsFile, JSON.stringify(sidecars), { mode: 0o600 });
	const child = fork(join(__dirname, "sidecars.js"), [nats.url, credsFile], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
	const died = new Promise<never>((_r, reject) => child.once("exit", (code) => reject(new Error(`the sidecars process exited (code ${code})`))));
	died.catch(() => undefined);
	const reply = () => Promise.race([new Promise<{ published: number; ms: number }>((r) => child.once("message", r as never)), died]);
	process.stdout.write(`connecting ${SIDECARS} sidecars… `);
	try {
		await reply();
	} catch (err) {
		await nats.stop();
		throw err;
	}
	process.stdout.write("ready\n");

	const config = loadConfig({ NODE_ID: "bench-telemetry", LOG_LEVEL: "warn" }, []);
	const broker = new ServiceBroker(brokerOptions(config, { servers: [nats.url], creds }, platformSchemas()));
	broker.createService(telemetryService() as AnyServiceSchema);
	const durable = defineConsumer("telemetry", Telemetry.heartbeat).durable;

	const raw: number[] = [];
	const e2e: number[] = [];
	try {
		for (let round = 1; round <= ROUNDS; round++) {
			// Baseline: plain js.publish from the same sidecars into the same stream; nothing consumes.
			await jsm.streams.purge(STREAMS.telemetry.name);
			child.send({ mode: "raw", round: round * 2, perSidecar: PER_SIDECAR, window: WINDOW });
			const r = await reply();
			raw.push((r.published / r.ms) * 1000);
			await jsm.streams.purge(STREAMS.telemetry.name);
			if (round === 1) await broker.start();
			const started = performance.now();
			child.send({ mode: "sidecar", round: round * 2 + 1, perSidecar: PER_SIDECAR, window: WINDOW });
			const published = await reply();
			// End to end: until the telemetry service has acknowledged the last heartbeat of the round.
			await drained(jsm, STREAMS.telemetry.name, durable);
			const ms = performance.now() - started;
			e2e.push((TOTAL / ms) * 1000);
			console.log(
				`round ${round}: raw js.publish ${fmt(raw.at(-1)!)}/s | sidecars → telemetry ${fmt(e2e.at(-1)!)}/s end to end (published in ${Math.round(published.ms)} ms, consumed in ${Math.round(ms)} ms)`,
			);
		}
	} finally {
		if (child.connected) child.send({ exit: true });
		await broker.stop().catch(() => undefined);
		await nc.close();
		await nats.stop();
		rmSync(dir, { recursive: true, force: true });
	}
	const version = execFileSync(defaultNatsServerBin(), ["--version"]).toString().trim();
	const rawMedian = median(raw);
	const e2eMedian = median(e2e);
	console.log(`\nNode ${process.version}, ${version}, ${cpus().length} cores; ${SIDECARS} sidecars × ${PER_SIDECAR} heartbeats per round (${fmt(TOTAL)}), ${WINDOW} in flight per sidecar, ${ROUNDS} rounds, medians\n`);
	console.log("| path | heartbeats/s | ratio | target |");
	console.log("|---|---|---|---|");
	console.log(`| raw JetStream \`js.publish\` from the ${SIDECARS} sidecar connections, no consumer | ${fmt(rawMedian)} | 1.00 (baseline) | |`);
	console.log(
		`| sidecars (TelemetryPublisher) → TELEMETRY → telemetry service, acknowledged | ${fmt(e2eMedian)} | **${(e2eMedian / rawMedian).toFixed(2)} × raw** | ≥ 20,000/s: ${e2eMedian >= 20_000 ? "met" : "not met"} |`,
	);
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
