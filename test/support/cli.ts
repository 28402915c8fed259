import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../lib/paths";

export { isAlive } from "../../lib/nats-server";

export interface RunningCli {
	child: ChildProcess;
	stdout(): string;
	stderr(): string;
	/** Resolves with the first stdout match of `re`, or fails if the process exits or time runs out. */
	waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
	exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** What the start command prints once every service runs. */
export const BANNER =
	/Savassan is up\n\s+nats\s+(\S+)(?: \(embedded, pid (\d+), data (\S+)\))?\n\s+node\s+(\S+)\n\s+services ([^\n]+)\n\s+gateway\s+(\S+)/;

export interface Banner {
	nats: string;
	/** Set when the process spawned its own nats-server. */
	natsPid?: number;
	node: string;
	services: string;
	gateway: string;
}

/** Resolves with the banner once the process printed it; fails if it exits first. */
export async function waitUntilUp(c: RunningCli, timeoutMs?: number): Promise<Banner> {
	const m = await c.waitFor(BANNER, timeoutMs);
	return { nats: m[1]!, natsPid: m[2] ? Number(m[2]) : undefined, node: m[4]!, services: m[5]!, gateway: m[6]! };
}

/** Runs the real start command (`npm start` runs the same file) as its own process group, like a terminal job. */
export function runCli(env: Record<string, string>): RunningCli {
	const child = spawn(process.execPath, [join(PROJECT_ROOT, "dist", "bin", "savassan.js")], {
		env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...env },
		stdio: ["ignore", "pipe", "pipe"],
		detached: true,
	});
	let out = "";
	let err = "";
	child.stdout!.on("data", (c) => (out += c));
	child.stderr!.on("data", (c) => (err += c));
	const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
		child.once("exit", (code, signal) => r({ code, signal })),
	);
	return {
		child,
		stdout: () => out,
		stderr: () => err,
		exited,
		async waitFor(re, timeoutMs = 20_000) {
			const deadline = Date.now() + timeoutMs;
			for (;;) {
				const m = out.match(re);
				if (m) return m;
				if (child.exitCode !== null || child.signalCode !== null) {
					throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before printing ${re}\nstdout:\n${out}\nstderr:\n${err}`);
				}
				if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}\nstdout:\n${out}\nstderr:\n${err}`);
				await new Promise((r) => setTimeout(r, 25));
			}
		},
	};
}

/** PIDs of running processes whose command line mentions `needle` (e.g. a data dir). */
export function processesMentioning(needle: string): number[] {
	const pids: number[] = [];
	for (const entry of readdirSync("/proc")) {
		if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
		try {
			if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(needle)) pids.push(Number(entry));
		} catch {
			/* gone meanwhile */
		}
	}
	return pids;
}

/** PIDs of the running children of `pid` (say, the trainer a sidecar started in a process group of its own). */
export function childrenOf(pid: number): number[] {
	const children: number[] = [];
	for (const entry of readdirSync("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			// The command name (2nd field) may hold spaces and parentheses: the parent pid follows its last ')'.
			const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
			if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) children.push(Number(entry));
		} catch {
			/* gone meanwhile */
		}
	}
	return children;
}
