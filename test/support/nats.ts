import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultNatsServerBin, startEmbeddedNats, type EmbeddedNats } from "../../lib/nats-server";

export interface TestNats {
	url: string;
	server: EmbeddedNats;
	/** Stops the server and starts it again on the same port and store (JetStream data survives). */
	restart(downMs?: number): Promise<void>;
	/** Stops the server by its PID and removes its data dir. */
	stop(): Promise<void>;
}

/** A real nats-server with JetStream for one test suite: free port on loopback, its own temp data dir. */
export async function startTestNats(): Promise<TestNats> {
	const dir = mkdtempSync(join(tmpdir(), "savassan-test-nats-"));
	const bin = process.env.NATS_SERVER_BIN ?? defaultNatsServerBin();
	let server = await startEmbeddedNats({ bin, dir });
	const t: TestNats = {
		url: server.url,
		server,
		async restart(downMs = 200) {
			await server.stop();
			await new Promise((r) => setTimeout(r, downMs));
			server = await startEmbeddedNats({ bin, dir, port: server.port });
			t.server = server;
		},
		async stop() {
			await server.stop();
			rmSync(dir, { recursive: true, force: true });
		},
	};
	return t;
}
