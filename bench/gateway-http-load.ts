/**
 * The load side of the HTTP benchmark, in its own process so that client and server do not share an event loop:
 * `concurrency` callers in a closed loop, either HTTP GETs over keep-alive connections or NATS requests.
 * Started with its target as JSON in argv[2]; each `{ ms }` message runs one round and answers its figures.
 */
import { connect } from "@nats-io/transport-node";
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";
import { percentile } from "./support";

export type LoadTarget =
	| { kind: "http"; url: string; headers: Record<string, string>; concurrency: number }
	| { kind: "nats"; servers: string; subject: string; concurrency: number };

export interface RoundResult {
	perSec: number;
	p50: number;
	p99: number;
	failures: number;
}

type Call = () => Promise<boolean>;

function httpCaller(target: Extract<LoadTarget, { kind: "http" }>): Call {
	const agent = new Agent({ keepAlive: true, maxSockets: target.concurrency });
	const url = new URL(target.url);
	return () =>
		new Promise((resolve) => {
			const req = request({ agent, host: url.hostname, port: url.port, path: url.pathname, headers: target.headers }, (res) => {
				// Read the whole body, as a client would, before the connection is reused.
				res.on("data", () => undefined);
				res.on("end", () => resolve(res.statusCode === 200));
			});
			req.on("error", () => resolve(false));
			req.end();
		});
}

async function natsCaller(target: Extract<LoadTarget, { kind: "nats" }>): Promise<Call> {
	const nc = await connect({ servers: target.servers });
	return async () => {
		const reply = await nc.request(target.subject, undefined, { timeout: 5_000 }).catch(() => undefined);
		// Decoded, as the HTTP client's answer is complete only once read.
		return reply !== undefined && typeof reply.json<{ id?: string }>().id === "string";
	};
}

async function closedLoop(call: Call, concurrency: number, ms: number): Promise<RoundResult> {
	const latencies: number[] = [];
	let failures = 0;
	const started = performance.now();
	const end = started + ms;
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (performance.now() < end) {
				const t = performance.now();
				if (await call()) latencies.push(performance.now() - t);
				else failures++;
			}
		}),
	);
	const elapsed = performance.now() - started;
	return { perSec: (latencies.length / elapsed) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99), failures };
}

async function main(): Promise<void> {
	const target = JSON.parse(process.argv[2]!) as LoadTarget;
	const call = target.kind === "http" ? httpCaller(target) : await natsCaller(target);
	process.on("message", (m: { ms?: number; stop?: boolean }) => {
		if (m.stop) process.exit(0);
		void closedLoop(call, target.concurrency, m.ms!).then((r) => process.send!(r));
	});
	process.send!({ ready: true });
}

if (require.main === module) void main();
