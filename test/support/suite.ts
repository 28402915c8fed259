import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credsAuthenticator } from "../../lib/nats-auth";
import { startTestNats, type TestNats } from "./nats";

/** What a service suite shares: its own nats-server, a data dir, and a connection of its own to read streams with. */
export interface ServiceSuite {
	nats: TestNats;
	dataDir: string;
	nc: NatsConnection;
	jsm: JetStreamManager;
	/** Closes the connection, stops the server by PID and removes the data dir. */
	close(): Promise<void>;
}

export async function openServiceSuite(name: string, opts: { operator?: boolean } = {}): Promise<ServiceSuite> {
	const nats = await startTestNats(opts);
	const dataDir = mkdtempSync(join(tmpdir(), `savassan-${name}-`));
	const creds = nats.endpoint.creds;
	const nc = await connect({ servers: nats.url, ...(creds ? { authenticator: credsAuthenticator(creds) } : {}) });
	return {
		nats,
		dataDir,
		nc,
		jsm: await jetstreamManager(nc),
		async close() {
			await nc.close();
			await nats.stop();
			rmSync(dataDir, { recursive: true, force: true });
		},
	};
}
