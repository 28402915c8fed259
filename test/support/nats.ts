import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsEndpoint } from "../../lib/bus";
import { NatsAuthority } from "../../lib/nats-auth";
import { defaultNatsServerBin, startEmbeddedNats, type EmbeddedNats } from "../../lib/nats-server";

export interface TestNats {
	url: string;
	/** Servers plus, in operator mode, the platform's credentials: what a broker or Bus connects with. */
	endpoint: NatsEndpoint;
	/** Set in operator mode: mints run credentials. */
	authority?: NatsAuthority;
	authorityFile?: string;
	server: EmbeddedNats;
	/** Stops the server and starts it again on the same port and store (JetStream data survives). */
	restart(downMs?: number): Promise<void>;
	/** Stops the server by its PID and removes its data dir. */
	stop(): Promise<void>;
}

/**
 * A real nats-server with JetStream for one test suite: free port on loopback, its own temp data dir; with
 * `operator`, in operator mode like the platform's embedded server (every client needs credentials), its keys in
 * `authorityFile` (what NATS_AUTHORITY names).
 */
export async function startTestNats(opts: { operator?: boolean } = {}): Promise<TestNats> {
	const dir = mkdtempSync(join(tmpdir(), "savassan-test-nats-"));
	const bin = process.env.NATS_SERVER_BIN ?? defaultNatsServerBin();
	const authorityFile = join(dir, "authority.json");
	const authority = opts.operator ? NatsAuthority.loadOrCreate(authorityFile) : undefined;
	const extraConfig = await authority?.serverConfig();
	let server = await startEmbeddedNats({ bin, dir, extraConfig });
	const t: TestNats = {
		url: server.url,
		endpoint: { servers: [server.url], creds: await authority?.platformCreds("test") },
		authority,
		authorityFile: authority && authorityFile,
		server,
		async restart(downMs = 200) {
			await server.stop();
			await new Promise((r) => setTimeout(r, downMs));
			server = await startEmbeddedNats({ bin, dir, port: server.port, extraConfig });
			t.server = server;
		},
		async stop() {
			await server.stop();
			rmSync(dir, { recursive: true, force: true });
		},
	};
	return t;
}
