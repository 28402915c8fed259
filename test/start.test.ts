import { connect } from "@nats-io/transport-node";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { SERVICE_NAMES } from "../services/index";
import { startBroker } from "./support/broker";
import { isAlive, processesMentioning, runCli, waitUntilUp, type RunningCli } from "./support/cli";
import { startTestNats } from "./support/nats";
import { waitFor } from "./support/wait";

const dirs: string[] = [];
const running: RunningCli[] = [];

function dataDir(): string {
	const d = mkdtempSync(join(tmpdir(), "savassan-start-"));
	dirs.push(d);
	return d;
}

function cli(env: Record<string, string>): RunningCli {
	const c = runCli(env);
	running.push(c);
	return c;
}

async function getJson(url: string): Promise<{ status: number; body: any }> {
	const res = await fetch(url);
	return { status: res.status, body: await res.json() };
}

after(async () => {
	for (const c of running) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
	for (const d of dirs) {
		for (const pid of processesMentioning(d)) process.kill(pid, "SIGKILL");
		rmSync(d, { recursive: true, force: true });
	}
});

describe("the start command", () => {
	it("spawns its own NATS, serves the gateway, and on SIGTERM stops everything it started", async () => {
		const dir = dataDir();
		const c = cli({ DATA_DIR: dir, GATEWAY_PORT: "0" });
		const s = await waitUntilUp(c);
		assert.match(s.nats, /^nats:\/\/127\.0\.0\.1:\d+$/, "loopback only");
		assert.ok(s.natsPid && isAlive(s.natsPid));
		assert.equal(s.services, SERVICE_NAMES.join(", "));
		assert.ok(existsSync(join(dir, "nats", "nats-server.pid")));

		assert.deepEqual(await getJson(`${s.gateway}/healthz`), { status: 200, body: { status: "ok" } });
		const ready = await getJson(`${s.gateway}/readyz`);
		assert.equal(ready.status, 200);
		assert.deepEqual(ready.body, {
			status: "ready",
			node: s.node,
			bus: "connected",
			services: Object.fromEntries(SERVICE_NAMES.map((name) => [name, [s.node]])),
		});
		// Operator mode: a client without credentials is turned away.
		await assert.rejects(connect({ servers: s.nats, reconnect: false }), /Authorization Violation/);
		const missing = await getJson(`${s.gateway}/nope`);
		const { trace_id: traceId, ...body } = missing.body as { trace_id?: string };
		assert.deepEqual({ status: missing.status, body }, { status: 404, body: { status: 404, code: "NOT_FOUND", message: "no route GET /nope" } });
		assert.match(traceId ?? "", /^[\w-]{8,}$/, "a trace id to quote");

		c.child.kill("SIGTERM");
		assert.deepEqual(await c.exited, { code: 0, signal: null });
		assert.equal(isAlive(s.natsPid!), false, "no orphan nats-server");
		assert.deepEqual(processesMentioning(dir), []);
		assert.equal(existsSync(join(dir, "nats", "nats-server.pid")), false);
		assert.ok(existsSync(join(dir, "nats", "jetstream")), "JetStream data stays for the next start");
		assert.doesNotMatch(c.stdout() + c.stderr(), /"level":50/, "no error logged during a clean run");
	});

	it("Ctrl+C (SIGINT to the whole process group) drains and stops cleanly", async () => {
		const dir = dataDir();
		const c = cli({ DATA_DIR: dir, GATEWAY_PORT: "0" });
		const s = await waitUntilUp(c);
		process.kill(-c.child.pid!, "SIGINT");
		assert.deepEqual(await c.exited, { code: 0, signal: null });
		assert.equal(isAlive(s.natsPid!), false);
		assert.doesNotMatch(c.stdout() + c.stderr(), /"level":50/, "NATS outlived the services: no disconnect errors");
	});

	it("reaps the nats-server orphaned by a SIGKILLed run on the next start", async () => {
		const dir = dataDir();
		const first = cli({ DATA_DIR: dir, GATEWAY_PORT: "0" });
		const a = await waitUntilUp(first);
		first.child.kill("SIGKILL");
		await first.exited;
		assert.ok(isAlive(a.natsPid!), "the orphan is still there");

		const second = cli({ DATA_DIR: dir, GATEWAY_PORT: "0" });
		const b = await waitUntilUp(second);
		assert.equal(isAlive(a.natsPid!), false, "orphan stopped");
		assert.notEqual(b.natsPid, a.natsPid);
		second.child.kill("SIGTERM");
		assert.equal((await second.exited).code, 0);
		assert.deepEqual(processesMentioning(dir), []);
	});

	it("refuses bad configuration with every problem named, before starting anything", async () => {
		const dir = dataDir();
		const c = cli({ DATA_DIR: dir, GATEWAY_PORT: "99999", SERVICES: "gateway,nope", LOG_LEVEL: "chatty" });
		assert.deepEqual(await c.exited, { code: 2, signal: null });
		assert.equal(
			c.stderr(),
			[
				"savassan: invalid configuration:",
				`  - SERVICES: unknown service "nope" (known: ${SERVICE_NAMES.join(", ")})`,
				'  - LOG_LEVEL="chatty": expected one of fatal, error, warn, info, debug, trace',
				'  - GATEWAY_PORT="99999": expected a whole number from 0 to 65535',
				"",
			].join("\n"),
		);
		assert.equal(existsSync(join(dir, "nats")), false);
	});

	it("RUNTIME=kubernetes with no cluster configured fails the start plainly, leaving nothing running", async () => {
		const dir = dataDir();
		const c = cli({ DATA_DIR: dir, GATEWAY_PORT: "0", RUNTIME: "kubernetes", HOME: dir, KUBECONFIG: "" });
		assert.deepEqual(await c.exited, { code: 1, signal: null });
		assert.match(c.stdout() + c.stderr(), /start failed: RUNTIME=kubernetes, but no cluster is configured: set KUBECONFIG/);
		assert.deepEqual(processesMentioning(dir), []);
	});

	it("fails clearly when the gateway port is taken, and leaves no nats-server behind", async () => {
		const dir = dataDir();
		const blocker = createServer();
		await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
		const port = (blocker.address() as { port: number }).port;
		try {
			const c = cli({ DATA_DIR: dir, GATEWAY_PORT: String(port) });
			assert.equal((await c.exited).code, 1);
			assert.match(c.stdout(), new RegExp(`gateway cannot listen on 127\\.0\\.0\\.1:${port}`));
			assert.doesNotMatch(c.stdout() + c.stderr(), /\n\s+at /, "no stack trace");
			assert.deepEqual(processesMentioning(dir), []);
		} finally {
			blocker.close();
		}
	});

	it("with NATS_URL joins that server, and services can be split across processes", async () => {
		const nats = await startTestNats();
		try {
			const dir = dataDir();
			const workers = cli({ NATS_URL: nats.url, SERVICES: "deadletters", NODE_ID: "workers", DATA_DIR: dir });
			const edge = cli({ NATS_URL: nats.url, SERVICES: "gateway", NODE_ID: "edge", GATEWAY_PORT: "0", DATA_DIR: dir });
			const w = await waitUntilUp(workers);
			const e = await waitUntilUp(edge);
			assert.equal(w.nats, nats.url);
			assert.equal(w.natsPid, undefined, "no embedded server");
			assert.equal(w.gateway, "not");
			await waitFor("the gateway to see the other process", async () => {
				const r = await getJson(`${e.gateway}/readyz`);
				return r.body.services.deadletters?.[0] === "workers";
			});
			const client = await startBroker(nats.url, "client", []);
			try {
				await waitFor("deadletters to be visible", () => client.registry.getServiceList({ onlyAvailable: true }).some((s) => s.name === "deadletters"));
				assert.deepEqual(await client.call("deadletters.stats"), { total: 0, by_consumer: [] });
			} finally {
				await client.stop();
			}
			workers.child.kill("SIGTERM");
			edge.child.kill("SIGTERM");
			assert.equal((await workers.exited).code, 0);
			assert.equal((await edge.exited).code, 0);
			assert.ok(isAlive(nats.server.pid), "a joined NATS is not ours to stop");
			assert.equal(existsSync(join(dir, "nats")), false, "no embedded server data when joining");
		} finally {
			await nats.stop();
		}
	});
});

describe("the embedded NATS under the start command", () => {
	it("is restarted when it dies, and the platform becomes ready again", async () => {
		const dir = dataDir();
		const c = cli({ DATA_DIR: dir, GATEWAY_PORT: "0", LOG_LEVEL: "info" });
		const s = await waitUntilUp(c);
		process.kill(s.natsPid!, "SIGKILL");
		await c.waitFor(/embedded nats-server restarted \(pid (\d+)\)/);
		const restartedPid = Number(c.stdout().match(/embedded nats-server restarted \(pid (\d+)\)/)![1]);
		assert.ok(isAlive(restartedPid));
		await waitFor("ready again", async () => (await getJson(`${s.gateway}/readyz`)).status === 200, 15_000);
		c.child.kill("SIGTERM");
		assert.equal((await c.exited).code, 0);
		assert.equal(isAlive(restartedPid), false);
		assert.deepEqual(processesMentioning(dir), []);
	});
});
