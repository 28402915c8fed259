import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { signalGroup } from "../../lib/process-group";
import { childrenOf, isAlive, runCli, waitUntilUp, type Banner, type RunningCli } from "./cli";
import type { TestNats } from "./nats";

/** One pino line of the platform's stdout. */
export interface LogLine {
	level: number;
	msg: string;
	[field: string]: unknown;
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

const stillRunning = (c: RunningCli) => c.child.exitCode === null && c.child.signalCode === null;

/**
 * The platform as the operating system runs it (`node dist/bin/savassan.js`), joined to a test NATS with the
 * platform's credentials, so a test can kill it without warning and start it again with the same environment
 * (same DATA_DIR, same node id). Each start is a new process; the latest one is `current`.
 */
export class PlatformProcess {
	private readonly lives: RunningCli[] = [];

	private constructor(private readonly env: Record<string, string>) {}

	/**
	 * `dataDir` gets the platform's creds file (0600, as an operator would store it) and the local runs; `env` adds
	 * SERVICES, RUNTIME and the like. Logs at info, so that tests can read what the process said.
	 */
	static joining(nats: TestNats, dataDir: string, env: Record<string, string>): PlatformProcess {
		const credsFile = join(dataDir, "platform.creds");
		writeFileSync(credsFile, nats.endpoint.creds!, { mode: 0o600 });
		return new PlatformProcess({
			NATS_URL: nats.url,
			NATS_CREDS: credsFile,
			NATS_AUTHORITY: nats.authorityFile!,
			DATA_DIR: dataDir,
			LOG_LEVEL: "info",
			...env,
		});
	}

	get current(): RunningCli {
		const c = this.lives[this.lives.length - 1];
		if (!c) throw new Error("the platform process was never started");
		return c;
	}

	get running(): boolean {
		return stillRunning(this.current);
	}

	/** Starts a new process and resolves once it printed that it is up. */
	async start(timeoutMs = 30_000): Promise<Banner> {
		const c = runCli(this.env);
		this.lives.push(c);
		return waitUntilUp(c, timeoutMs);
	}

	/** SIGKILL to the node process alone: no drain, no goodbye. What it started in process groups of their own lives on. */
	async kill(): Promise<Exit> {
		this.current.child.kill("SIGKILL");
		return this.current.exited;
	}

	/**
	 * SIGSTOP: the process hangs, its sockets open, like one stuck before a liveness probe kills it. The server
	 * keeps delivering into its pulls: messages it received and will never acknowledge.
	 */
	hang(): void {
		this.current.child.kill("SIGSTOP");
	}

	/** SIGTERM: the orderly stop. */
	async stop(): Promise<Exit> {
		this.current.child.kill("SIGTERM");
		return this.current.exited;
	}

	/** The JSON log lines the current process wrote so far (the banner, and a line still being written, are skipped). */
	logs(): LogLine[] {
		const lines = this.current.stdout().split("\n");
		lines.pop(); // what follows the last newline is not a whole line yet
		return lines.filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as LogLine);
	}

	/** What every process of this platform wrote, for the message of a failed assertion. */
	output(): string {
		return this.lives.map((c, i) => `--- process ${i + 1} (pid ${c.child.pid}) stdout:\n${c.stdout()}\nstderr:\n${c.stderr()}`).join("\n");
	}

	/** Kills whatever process is still running; for `after` hooks. */
	async dispose(): Promise<void> {
		for (const c of this.lives.filter(stillRunning)) {
			c.child.kill("SIGKILL");
			await c.exited;
		}
	}
}

/** The pid of the runner sidecar the local runtime started for an attempt (its pid file under DATA_DIR/runs). */
export function sidecarPid(dataDir: string, runId: string, attempt: number | string): number {
	return Number(readFileSync(join(dataDir, "runs", runId, String(attempt), "runner.pid"), "utf8"));
}

/** SIGKILL to every sidecar the local runtime started under `dataDir` and to its trainer: for `after` hooks. */
export function killWorkloads(dataDir: string): void {
	const runs = join(dataDir, "runs");
	if (!existsSync(runs)) return;
	for (const runId of readdirSync(runs)) {
		for (const attempt of readdirSync(join(runs, runId))) {
			if (!existsSync(join(runs, runId, attempt, "runner.pid"))) continue;
			const sidecar = sidecarPid(dataDir, runId, attempt);
			if (!isAlive(sidecar)) continue;
			// The trainer leads a process group of its own.
			for (const pgid of [...childrenOf(sidecar), sidecar]) signalGroup(pgid, "SIGKILL");
		}
	}
}
