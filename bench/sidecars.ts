/**
 * Child process of telemetry.bench: N simulated runner sidecars, each its own NATS connection logged in with its
 * own run credential, publishing heartbeats. Told what to do over IPC:
 *   { mode: "raw" }       js.publish of the heartbeats (nats.js JetStream client), the baseline;
 *   { mode: "sidecar" }   the runner's own TelemetryPublisher (queue, ids, acked publishing).
 * Replies { published, ms } once every heartbeat of the round is acknowledged.
 */
import { jetstream } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import { AckedPublisher } from "../events/acked-publisher";
import { HEADERS } from "../events/headers";
import { subjects } from "../events/subjects";
import { telemetryMsgId, type Heartbeat } from "../events/telemetry";
import { credsAuthenticator } from "../lib/nats-auth";
import { TelemetryPublisher } from "../runner/publisher";

interface Sidecar {
	workspace: string;
	runId: string;
	creds: string;
}

interface Round {
	mode: "raw" | "sidecar";
	round: number;
	perSidecar: number;
	/** Heartbeats in flight per sidecar. */
	window: number;
}

const [url, credsFile] = process.argv.slice(2) as [string, string];
const sidecars = JSON.parse(readFileSync(credsFile, "utf8")) as Sidecar[];

function heartbeat(round: number, seq: number): Omit<Heartbeat, "run_id" | "workspace" | "attempt" | "seq" | "at"> & { seq: number } {
	return {
		seq,
		progress: { epoch: 1 + (seq % 10), epochs: 10, fraction: (seq % 100) / 100 },
		metrics: { loss: 1 / (seq + 1), accuracy: Math.min(1, seq / 1000), lr: 1e-4 },
		resources: { cpu_percent: 93.5, memory_bytes: 2_147_483_648 + round },
	};
}

async function main(): Promise<void> {
	const conns: { s: Sidecar; nc: NatsConnection; acked: AckedPublisher }[] = [];
	// 50 handshakes at a time: each signs the server's nonce with its own key.
	for (let i = 0; i < sidecars.length; i += 50) {
		await Promise.all(
			sidecars.slice(i, i + 50).map(async (s) => {
				const nc = await connect({ servers: url, authenticator: credsAuthenticator(s.creds), inboxPrefix: subjects.inboxOfRun(s.runId) });
				conns.push({ s, nc, acked: new AckedPublisher(nc, 30_000, subjects.inboxOfRun(s.runId)) });
			}),
		);
	}
	process.send!({ ready: conns.length });

	process.on("message", async (r: Round | { exit: true }) => {
		if ("exit" in r) {
			await Promise.all(conns.map((c) => c.nc.close()));
			process.exit(0);
		}
		const started = performance.now();
		await Promise.all(
			conns.map(async ({ s, nc, acked }, i) => {
				if (r.mode === "raw") {
					const js = jetstream(nc);
					const subject = subjects.telemetry(s.workspace, s.runId, "heartbeat");
					for (let sent = 0; sent < r.perSidecar; sent += r.window) {
						const batch = [];
						for (let k = sent; k < Math.min(r.perSidecar, sent + r.window); k++) {
							const body = { run_id: s.runId, workspace: s.workspace, attempt: r.round, at: new Date().toISOString(), ...heartbeat(r.round, k) };
							const h = headers();
							h.set(HEADERS.msgId, telemetryMsgId("heartbeat", body));
							batch.push(js.publish(subject, JSON.stringify(body), { headers: h, timeout: 30_000 }));
						}
						await Promise.all(batch);
					}
				} else {
					const out = new TelemetryPublisher(acked, { workspace: s.workspace, runId: s.runId, attempt: r.round, traceId: `bench-${i}` }, {
						maxQueued: 1_000_000,
						log: { warn: (m) => process.stderr.write(`${m}\n`) },
					});
					for (let sent = 0; sent < r.perSidecar; sent += r.window) {
						for (let k = sent; k < Math.min(r.perSidecar, sent + r.window); k++) {
							const { seq: _seq, ...body } = heartbeat(r.round, k);
							out.send("heartbeat", body);
						}
						await out.drain(60_000);
					}
				}
			}),
		);
		process.send!({ published: conns.length * r.perSidecar, ms: performance.now() - started });
	});
}

main().catch((err) => {
	process.stderr.write(`sidecars: ${(err as Error).stack}\n`);
	process.exit(1);
});
