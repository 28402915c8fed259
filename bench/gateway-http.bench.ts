/**
 * HTTP API benchmark: `GET /v1/runs/:id` through the gateway (uWebSockets.js → edge call → authz middleware:
 * API key check, policy decision, run lookup → execution.get) against the same-run baseline of raw NATS
 * request/reply (a plain subscription answering the same run's JSON). A third row makes the same edge call from a
 * NATS responder, and `GET /healthz` shows what HTTP alone (client, uWS, JSON answer) costs: together they split
 * the gap into the platform's authz pipeline and the HTTP layer itself. The load comes from a child process with the
 * same number of callers in flight for both, over keep-alive connections for HTTP; rounds are interleaved and the
 * medians reported, because these machines are noisy.
 * Usage: npm run bench:http [-- --rounds 3 --seconds 4 --concurrency 32]
 */
import { connect } from "@nats-io/transport-node";
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PROJECT_ROOT } from "../lib/paths";
import type { Run } from "../services/execution/run";
import { edgeCall, newTraceId } from "../services/gateway/edge";
import { startEdgePlatform, USER_PASSWORD, type EdgePlatform } from "../test/support/edge-platform";
import { startTestNats, type TestNats } from "../test/support/nats";
import { waitFor } from "../test/support/wait";
import type { LoadTarget, RoundResult } from "./gateway-http-load";
import { median } from "./support";

const { values: args } = parseArgs({
	options: {
		rounds: { type: "string", default: "3" },
		seconds: { type: "string", default: "4" },
		concurrency: { type: "string", default: "32" },
	},
});
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args.seconds) * 1000;
const CONCURRENCY = Number(args.concurrency);
const RAW_SUBJECT = "bench.http.runs.get.raw";
const EDGE_SUBJECT = "bench.http.runs.get.edge";

async function http<T>(method: string, url: string, headers: Record<string, string>, body?: unknown): Promise<T> {
	const res = await fetch(url, { method, headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
	if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
	return (await res.json()) as T;
}

/** A user with a finished run and an API key, made through the HTTP API itself. */
async function prepareRun(p: EdgePlatform): Promise<{ run: Run; apiKey: string }> {
	await p.addUser("bench", "editor", ["bench"]);
	const { access_token } = await http<{ access_token: string }>("POST", `${p.url}/v1/auth/login`, {}, { username: "bench", password: USER_PASSWORD });
	const bearer = { authorization: `Bearer ${access_token}` };
	const trainer = [process.execPath, join(PROJECT_ROOT, "examples", "trainer.js"), "--epochs", "1", "--steps", "2", "--step-ms", "20"];
	const submitted = await http<Run>("POST", `${p.url}/v1/runs`, bearer, { workspace: "bench", command: trainer });
	let run = submitted;
	// Finished, so no trainer competes for the CPU during the rounds.
	await waitFor("the run to finish", async () => (run = await http<Run>("GET", `${p.url}/v1/runs/${submitted.id}`, bearer)).status === "SUCCEEDED", 30_000);
	const { key } = await http<{ key: string }>("POST", `${p.url}/v1/me/api-keys`, bearer, { name: "bench" });
	return { run, apiKey: key };
}

async function startLoad(target: LoadTarget): Promise<{ child: ChildProcess; round(ms: number): Promise<RoundResult> }> {
	const child = fork(join(__dirname, "gateway-http-load.js"), [JSON.stringify(target)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
	await new Promise((resolve, reject) => {
		child.once("message", resolve);
		child.once("exit", (code) => reject(new Error(`load generator exited with ${code}`)));
	});
	return {
		child,
		round: (ms) =>
			new Promise((resolve) => {
				child.once("message", (r) => resolve(r as RoundResult));
				child.send({ ms });
			}),
	};
}

const fmt = (n: number, digits = 0) => n.toFixed(digits).padStart(9);

async function main(): Promise<void> {
	let platform: EdgePlatform | undefined;
	let baselineNats: TestNats | undefined;
	const children: ChildProcess[] = [];
	try {
		platform = await startEdgePlatform("bench-http", { api: { maxBodyBytes: 64 * 1024 } });
		const { run, apiKey } = await prepareRun(platform);

		// The baseline: the same run's JSON from a plain NATS responder, on its own nats-server. Between the two, the
		// same edge call as the HTTP API's made from a NATS responder: what the platform's authz costs without HTTP.
		baselineNats = await startTestNats();
		const nc = await connect({ servers: baselineNats.url });
		const broker = platform.broker;
		nc.subscribe(RAW_SUBJECT, {
			callback: (_err, msg) => {
				msg.respond(JSON.stringify(run));
			},
		});
		nc.subscribe(EDGE_SUBJECT, {
			callback: (_err, msg) => {
				const call = { action: "execution.get", params: { id: run.id }, credential: { apiKey }, source: "nats bench", traceId: newTraceId() };
				void edgeCall(broker, call).then((answer) => msg.respond(JSON.stringify(answer)), () => msg.respond());
			},
		});
		await nc.flush();

		const httpLoad = await startLoad({ kind: "http", url: `${platform.url}/v1/runs/${run.id}`, headers: { "x-api-key": apiKey }, concurrency: CONCURRENCY });
		const healthLoad = await startLoad({ kind: "http", url: `${platform.url}/healthz`, headers: {}, concurrency: CONCURRENCY });
		const edgeLoad = await startLoad({ kind: "nats", servers: baselineNats.url, subject: EDGE_SUBJECT, concurrency: CONCURRENCY });
		const natsLoad = await startLoad({ kind: "nats", servers: baselineNats.url, subject: RAW_SUBJECT, concurrency: CONCURRENCY });
		children.push(httpLoad.child, healthLoad.child, edgeLoad.child, natsLoad.child);

		// Warm-up: JIT, connections, the authz decision cache.
		for (const load of [httpLoad, healthLoad, edgeLoad, natsLoad]) await load.round(1000);
		const results = { http: [] as RoundResult[], health: [] as RoundResult[], edge: [] as RoundResult[], nats: [] as RoundResult[] };
		for (let i = 0; i < ROUNDS; i++) {
			results.http.push(await httpLoad.round(ROUND_MS));
			results.health.push(await healthLoad.round(ROUND_MS));
			results.edge.push(await edgeLoad.round(ROUND_MS));
			results.nats.push(await natsLoad.round(ROUND_MS));
		}
		const summary = (rs: RoundResult[]) => ({
			perSec: median(rs.map((r) => r.perSec)),
			p50: median(rs.map((r) => r.p50)),
			p99: median(rs.map((r) => r.p99)),
			failures: rs.reduce((n, r) => n + r.failures, 0),
		});
		const h = summary(results.http);
		const z = summary(results.health);
		const e = summary(results.edge);
		const n = summary(results.nats);
		console.log(`\nGET one run, ${CONCURRENCY} in flight from a child process, medians of ${ROUNDS} interleaved rounds of ${ROUND_MS / 1000} s`);
		console.log(`${"path".padEnd(44)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"failed".padStart(9)}`);
		console.log(`${"HTTP GET /v1/runs/:id (API key, authz)".padEnd(44)}${fmt(h.perSec)}${fmt(h.p50, 2)}${fmt(h.p99, 2)}${fmt(h.failures)}`);
		console.log(`${"HTTP GET /healthz (no action: HTTP alone)".padEnd(44)}${fmt(z.perSec)}${fmt(z.p50, 2)}${fmt(z.p99, 2)}${fmt(z.failures)}`);
		console.log(`${"same edge call from a NATS responder".padEnd(44)}${fmt(e.perSec)}${fmt(e.p50, 2)}${fmt(e.p99, 2)}${fmt(e.failures)}`);
		console.log(`${"raw NATS request/reply (baseline)".padEnd(44)}${fmt(n.perSec)}${fmt(n.p50, 2)}${fmt(n.p99, 2)}${fmt(n.failures)}`);
		console.log(`ratio HTTP / baseline: ${(h.perSec / n.perSec).toFixed(2)}×; HTTP / same edge call over NATS: ${(h.perSec / e.perSec).toFixed(2)}×`);
		await nc.close();
	} finally {
		for (const child of children) child.kill();
		await baselineNats?.stop();
		await platform?.close();
	}
}

main().catch((err: unknown) => {
	console.error(err);
	process.exitCode = 1;
});
