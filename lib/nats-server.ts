import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

export interface EmbeddedNatsOptions {
	/** Binary name or path of nats-server. */
	bin: string;
	/** Folder for the server's config, pid file, log and JetStream store. */
	dir: string;
	host?: string;
	/** 0 picks a free port. */
	port?: number;
	readyTimeoutMs?: number;
	/** Extra lines appended to the generated server config. */
	extraConfig?: string;
	/** Unique name of this server; JetStream in a cluster needs one (it names the replicas' peers). */
	serverName?: string;
	/** Makes the server a member of a cluster: it listens for routes on `port` and connects to `routes`. */
	cluster?: ClusterMembership;
}

export interface ClusterMembership {
	/** The same on every member. */
	name: string;
	/** Fixed, since the other members' `routes` name it. */
	port: number;
	/** `nats-route://host:port` of the members (listing this server itself is harmless). */
	routes: string[];
}

export interface EmbeddedNats {
	readonly url: string;
	readonly port: number;
	readonly pid: number;
	readonly dir: string;
	/** Settles when the server process ends, for whatever reason. */
	readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
	/** Stops the server (SIGTERM, then SIGKILL after `graceMs`) and waits for it to exit. */
	stop(graceMs?: number): Promise<void>;
}

/** `nats-server` from PATH, else where Debian's package puts it (/usr/sbin is not on every user's PATH). */
export function defaultNatsServerBin(): string {
	const dirs = [...(process.env.PATH ?? "").split(":").filter(Boolean), "/usr/sbin", "/usr/local/bin"];
	return dirs.map((d) => join(d, "nats-server")).find((p) => existsSync(p)) ?? "nats-server";
}

export class NatsServerError extends Error {
	override name = "NatsServerError";
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
	return new Promise((resolvePort, reject) => {
		const srv = createServer();
		srv.unref();
		srv.once("error", reject);
		srv.listen(0, host, () => {
			const address = srv.address();
			srv.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
		});
	});
}

export function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}

function cmdlineOf(pid: number): string {
	try {
		return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
	} catch {
		return "";
	}
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	while (isAlive(pid)) {
		if (Date.now() > deadline) return false;
		await new Promise((r) => setTimeout(r, 25));
	}
	return true;
}

/**
 * A previous run killed with SIGKILL cannot stop its child; its pid file names the orphan, which would otherwise
 * hold the JetStream store. Stop it only if it really is a nats-server serving this very folder.
 */
async function reapOrphan(pidFile: string, confFile: string): Promise<void> {
	if (!existsSync(pidFile)) return;
	const pid = Number(readFileSync(pidFile, "utf8").trim());
	if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
		const cmd = cmdlineOf(pid);
		if (cmd.includes("nats-server") && cmd.includes(confFile)) {
			process.kill(pid, "SIGTERM");
			if (!(await waitForExit(pid, 5_000))) process.kill(pid, "SIGKILL");
			await waitForExit(pid, 2_000);
		}
	}
	rmSync(pidFile, { force: true });
}

interface ConfigValues {
	host: string;
	port: number;
	dir: string;
	pidFile: string;
	extra: string;
	serverName?: string;
	cluster?: ClusterMembership;
}

function serverConfig(o: ConfigValues): string {
	// JSON strings are valid NATS config strings, which keeps odd characters in paths safe.
	return [
		`listen: ${JSON.stringify(`${o.host}:${o.port}`)}`,
		...(o.serverName ? [`server_name: ${JSON.stringify(o.serverName)}`] : []),
		`pid_file: ${JSON.stringify(o.pidFile)}`,
		`jetstream: { store_dir: ${JSON.stringify(join(o.dir, "jetstream"))} }`,
		"max_payload: 8MB",
		...(o.cluster ? [clusterBlock(o.host, o.cluster)] : []),
		o.extra,
	].join("\n");
}

function clusterBlock(host: string, c: ClusterMembership): string {
	return [
		"cluster {",
		`  name: ${JSON.stringify(c.name)}`,
		`  listen: ${JSON.stringify(`${host}:${c.port}`)}`,
		`  routes: [${c.routes.map((r) => JSON.stringify(r)).join(", ")}]`,
		"}",
	].join("\n");
}

/** Starts a nats-server child with JetStream, listening on loopback, and resolves once it accepts clients. */
export async function startEmbeddedNats(opts: EmbeddedNatsOptions): Promise<EmbeddedNats> {
	const host = opts.host ?? "127.0.0.1";
	const dir = opts.dir;
	mkdirSync(dir, { recursive: true });
	const pidFile = join(dir, "nats-server.pid");
	const confFile = join(dir, "nats-server.conf");
	await reapOrphan(pidFile, confFile);

	// A free port can be taken between probing and binding: try a few times.
	for (let attempt = 1; ; attempt++) {
		const port = opts.port || (await freePort(host));
		const { serverName, cluster } = opts;
		writeFileSync(confFile, serverConfig({ host, port, dir, pidFile, extra: opts.extraConfig ?? "", serverName, cluster }));
		try {
			return await launch(opts.bin, confFile, { host, port, dir, pidFile, timeoutMs: opts.readyTimeoutMs ?? 15_000 });
		} catch (err) {
			const retryable = err instanceof NatsServerError && /address already in use/i.test(err.message);
			if (!retryable || opts.port || attempt >= 3) throw err;
		}
	}
}

function launch(
	bin: string,
	confFile: string,
	o: { host: string; port: number; dir: string; pidFile: string; timeoutMs: number },
): Promise<EmbeddedNats> {
	return new Promise((resolveStart, reject) => {
		let child: ChildProcess;
		try {
			// Own process group: a Ctrl+C in the terminal must reach only the platform, which stops the server last,
			// after its consumers have drained.
			child = spawn(bin, ["-c", confFile], { stdio: ["ignore", "ignore", "pipe"], detached: true });
		} catch (err) {
			reject(new NatsServerError(`cannot start ${bin}: ${(err as Error).message}`));
			return;
		}
		let log = "";
		let settled = false;
		const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
			child.once("exit", (code, signal) => r({ code, signal })),
		);
		child.stderr!.pipe(createWriteStream(join(o.dir, "nats-server.log"), { flags: "a" }));
		const fail = (message: string) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			if (child.exitCode === null) child.kill("SIGKILL");
			reject(new NatsServerError(`${message}\n--- nats-server log ---\n${log.trim().split("\n").slice(-15).join("\n")}`));
		};
		const timer = setTimeout(() => fail(`nats-server did not become ready within ${o.timeoutMs} ms`), o.timeoutMs);
		child.once("error", (err: NodeJS.ErrnoException) =>
			fail(
				err.code === "ENOENT"
					? `nats-server not found (${bin}): install it with 'apt-get install nats-server' or set NATS_SERVER_BIN`
					: `cannot start ${bin}: ${err.message}`,
			),
		);
		child.once("exit", (code, signal) => fail(`nats-server exited during start (code ${code}, signal ${signal})`));
		child.stderr!.setEncoding("utf8");
		child.stderr!.on("data", (chunk: string) => {
			if (settled) return;
			log += chunk;
			if (log.includes("Server is ready")) {
				settled = true;
				clearTimeout(timer);
				const pid = child.pid!;
				resolveStart({
					url: `nats://${o.host}:${o.port}`,
					port: o.port,
					pid,
					dir: o.dir,
					exited,
					async stop(graceMs = 10_000) {
						if (child.exitCode === null && child.signalCode === null) {
							child.kill("SIGTERM");
							const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
							await exited;
							clearTimeout(killer);
						}
						rmSync(o.pidFile, { force: true });
					},
				});
			}
		});
	});
}
