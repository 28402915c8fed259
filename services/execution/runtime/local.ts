import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isAlive } from "../../../lib/nats-server";
import { terminateGroup } from "../../../lib/process-group";
import { PROJECT_ROOT } from "../../../lib/paths";
import { RUN_ENV } from "../../../lib/run-env";
import { RuntimeError, type RuntimePort, type WorkloadObservation, type WorkloadSpec } from "./runtime";

/**
 * The default runtime: the runner sidecar as a child process (in its own process group, with the trainer as its
 * child), one folder per attempt under `<dataDir>/runs`. Liveness comes from the sidecar's heartbeats and the
 * watchdog, as on any runtime; a pid file makes `start` idempotent across controller restarts, and an owner file
 * (the platform process in charge) lets a restarted one take over what a killed one left running.
 */

export interface LocalRuntimeOptions {
	/** Folder for per-attempt files: credentials (0600), checkpoints, the sidecar's own log. */
	dir: string;
	/** The runner entry point (compiled bin/runner.js). */
	runnerScript?: string;
	/** Grace between SIGTERM and SIGKILL on cancel. */
	graceMs?: number;
	log: { info(msg: string): void; warn(msg: string): void };
}

/** Variables of this machine a trainer may see; nothing else of the platform's environment leaks to it. */
const INHERITED = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "NODE_OPTIONS"];

export class LocalRuntime implements RuntimePort {
	readonly kind = "local";
	private readonly started = new Map<string, number>();
	private readonly runner: string;

	constructor(private readonly opts: LocalRuntimeOptions) {
		this.runner = opts.runnerScript ?? join(PROJECT_ROOT, "dist", "bin", "runner.js");
	}

	private attemptDir(runId: string, attempt: number): string {
		return join(this.opts.dir, runId, String(attempt));
	}

	/** The pid in `<attempt dir>/<file>`: `runner.pid` (the sidecar) or `owner.pid` (the platform process in charge of it). */
	private pidOf(runId: string, attempt: number, file = "runner.pid"): number | undefined {
		const path = join(this.attemptDir(runId, attempt), file);
		if (!existsSync(path)) return undefined;
		const pid = Number(readFileSync(path, "utf8"));
		return Number.isInteger(pid) && pid > 0 ? pid : undefined;
	}

	async start(spec: WorkloadSpec): Promise<void> {
		const dir = this.attemptDir(spec.runId, spec.attempt);
		const known = this.pidOf(spec.runId, spec.attempt);
		if (known !== undefined) {
			// Started before (maybe by a controller that has since restarted): never a second workload.
			if (isAlive(known)) this.started.set(`${spec.runId}:${spec.attempt}`, known);
			return;
		}
		if (!spec.command.length) throw new RuntimeError(`run ${spec.runId} has an empty command`, false);
		mkdirSync(join(dir, "checkpoints"), { recursive: true });
		const credsFile = join(dir, "nats.creds");
		writeFileSync(credsFile, spec.credentials, { mode: 0o600 });
		const env: Record<string, string> = {};
		for (const k of INHERITED) if (process.env[k] !== undefined) env[k] = process.env[k]!;
		Object.assign(env, spec.env, {
			[RUN_ENV.runId]: spec.runId,
			[RUN_ENV.attempt]: String(spec.attempt),
			[RUN_ENV.workspace]: spec.workspace,
			[RUN_ENV.traceId]: spec.traceId,
			[RUN_ENV.checkpointDir]: join(dir, "checkpoints"),
			[RUN_ENV.natsUrl]: spec.sidecar.natsUrl,
			[RUN_ENV.natsCreds]: credsFile,
			[RUN_ENV.heartbeatIntervalMs]: String(spec.sidecar.heartbeatIntervalMs),
			[RUN_ENV.storageUrl]: spec.sidecar.storageUrl,
		});
		const out = openSync(join(dir, "runner.log"), "a");
		try {
			const child = spawn(process.execPath, [this.runner, "--", ...spec.command], {
				cwd: dir,
				env,
				detached: true, // its own process group: cancel signals the sidecar and the trainer together
				stdio: ["ignore", out, out],
			});
			const pid = await new Promise<number>((resolvePid, reject) => {
				child.once("spawn", () => resolvePid(child.pid!));
				child.once("error", (err) => reject(new RuntimeError(`cannot start the runner for ${spec.runId}: ${err.message}`, true)));
			});
			writeFileSync(join(dir, "runner.pid"), String(pid));
			writeFileSync(join(dir, "owner.pid"), String(process.pid));
			this.started.set(`${spec.runId}:${spec.attempt}`, pid);
			child.once("exit", () => this.started.delete(`${spec.runId}:${spec.attempt}`));
			child.unref();
			this.opts.log.info(`run ${spec.runId} attempt ${spec.attempt}: runner started (pid ${pid})`);
		} finally {
			closeSync(out);
		}
	}

	async cancel(runId: string, attempt: number): Promise<void> {
		const pid = this.started.get(`${runId}:${attempt}`) ?? this.pidOf(runId, attempt);
		if (pid === undefined || !isAlive(pid)) return;
		await terminateGroup(pid, this.opts.graceMs ?? 10_000);
	}

	/**
	 * A sidecar whose platform process died without stopping it (SIGKILL, crash) is taken over, so that it stops
	 * with this process. One whose platform process still runs (another instance sharing DATA_DIR) stays with it.
	 */
	async adopt(runId: string, attempt: number): Promise<void> {
		const pid = this.pidOf(runId, attempt);
		if (pid === undefined || !isAlive(pid) || this.started.has(`${runId}:${attempt}`)) return;
		const owner = this.pidOf(runId, attempt, "owner.pid");
		if (owner !== undefined && isAlive(owner)) return;
		writeFileSync(join(this.attemptDir(runId, attempt), "owner.pid"), String(process.pid));
		this.started.set(`${runId}:${attempt}`, pid);
		this.opts.log.info(`run ${runId} attempt ${attempt}: runner (pid ${pid}) taken over from a platform process that is gone`);
	}

	async observe(): Promise<() => Promise<void>> {
		// Local workloads report through their sidecar (done) and the watchdog (silence); nothing to watch here.
		return async () => undefined;
	}

	async list(): Promise<WorkloadObservation[]> {
		return [...this.started.entries()].map(([key, pid]) => {
			const [runId, attempt] = key.split(":");
			return { runId: runId!, attempt: Number(attempt), phase: isAlive(pid) ? "running" : "vanished" };
		});
	}

	/** Local runs end with the platform that started (or took over) them; on the next start the watchdog retries them. */
	async close(): Promise<void> {
		await Promise.all([...this.started.values()].map((pid) => terminateGroup(pid, this.opts.graceMs ?? 10_000)));
		this.started.clear();
	}
}
