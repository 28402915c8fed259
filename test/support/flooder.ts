/**
 * Child process of the malformed-flood drill and benchmark: a rogue producer holding a run credential of its own,
 * in its own process as an outside producer would be. Told over IPC `{ count, window, round, tickMs? }`, it publishes
 * `count` malformed messages on its run's heartbeat subject, `window` at a time: each window as soon as the previous
 * one is acknowledged, or with `tickMs` one window per tick whatever the acknowledgements; it replies `{ flooded }`
 * once every one is stored. Argv: NATS URL, workspace, run id; the credential arrives as
 * the first IPC message `{ creds }` (a secret: never on the command line).
 */
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { performance } from "node:perf_hooks";
import { AckedPublisher } from "../../events/acked-publisher";
import { HEADERS } from "../../events/headers";
import { subjects } from "../../events/subjects";
import { credsAuthenticator } from "../../lib/nats-auth";

export interface FloodCommand {
	count: number;
	window: number;
	round: number;
	tickMs?: number;
}

/** Every other one is not JSON; the rest are JSON with every heartbeat field wrong. */
export function malformedPayload(i: number): string {
	return i % 2 ? `{"run_id":42,"attempt":"first","seq":-${i},"at":"yesterday","metrics":{"loss":"high"}}` : `{"run_id": "rogue", "seq": ${i}`;
}

async function main(): Promise<void> {
	const [url, workspace, runId] = process.argv.slice(2) as [string, string, string];
	const creds = await new Promise<string>((resolve) => process.once("message", (m: { creds: string }) => resolve(m.creds)));
	const inbox = subjects.inboxOfRun(runId);
	const nc: NatsConnection = await connect({ servers: url, authenticator: credsAuthenticator(creds), inboxPrefix: inbox });
	const acked = new AckedPublisher(nc, 30_000, inbox);
	const subject = subjects.telemetry(workspace, runId, "heartbeat");
	process.on("message", async (c: FloodCommand | { exit: true }) => {
		if ("exit" in c) {
			acked.close();
			await nc.close();
			process.exit(0);
		}
		const stored: Promise<unknown>[] = [];
		const started = performance.now();
		for (let sent = 0, tick = 1; sent < c.count; sent += c.window, tick++) {
			const batch = [];
			for (let i = sent; i < Math.min(c.count, sent + c.window); i++) {
				const h = natsHeaders();
				h.set(HEADERS.msgId, `flood:${c.round}:${i}`);
				h.set(HEADERS.schemaVersion, "1");
				batch.push(acked.publish(subject, malformedPayload(i), h));
			}
			stored.push(...batch);
			if (c.tickMs) await new Promise((r) => setTimeout(r, Math.max(0, started + tick * c.tickMs! - performance.now())));
			else await Promise.all(batch);
		}
		process.send!({ flooded: (await Promise.all(stored)).length });
	});
	process.send!({ ready: true });
}

main().catch((err) => {
	process.stderr.write(`flooder: ${(err as Error).stack}\n`);
	process.exit(1);
});
