import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import type { GpuSample, Resources } from "../events/telemetry";

/**
 * CPU, memory and GPU use of the trainer, read from /proc and nvidia-smi. Never throws: what cannot be read is
 * left out of the sample.
 */

export type SamplerTarget = { rootPid: number } | { allExceptSelf: true };

export interface SamplerOptions {
	/** GPU query command; null disables GPUs. Default `nvidia-smi` from PATH. */
	nvidiaSmi?: string | null;
	/** Timeout of one GPU query (default 2 s). */
	gpuTimeoutMs?: number;
	/** Where procfs is mounted (default /proc). */
	procRoot?: string;
}

/** The fields of /proc/<pid>/stat the sampler needs. */
export interface ProcStat {
	pid: number;
	ppid: number;
	/** utime + stime, in clock ticks. */
	ticks: number;
	/** Resident set size, in pages. */
	rssPages: number;
	/** Start time in ticks after boot: with the pid, it names a process even if the pid is reused. */
	startTime: number;
}

const MIB = 1024 * 1024;
/** Sample schema limit. */
const MAX_GPUS = 16;
/** After this many failed queries in a row, nvidia-smi is treated as absent. */
const GPU_FAILURES_TO_GIVE_UP = 3;

/** Parses /proc/<pid>/stat. The command name is in parentheses and may itself hold spaces and parentheses. */
export function parseProcStat(text: string): ProcStat | undefined {
	const open = text.indexOf("(");
	const close = text.lastIndexOf(")");
	if (open < 0 || close < open) return undefined;
	const pid = Number(text.slice(0, open).trim());
	// Fields after the name, from field 3 (state): field n is at index n - 3.
	const f = text.slice(close + 2).split(" ");
	const ppid = Number(f[1]);
	const ticks = Number(f[11]) + Number(f[12]);
	const startTime = Number(f[19]);
	const rssPages = Number(f[21]);
	if (![pid, ppid, ticks, startTime, rssPages].every(Number.isFinite)) return undefined;
	return { pid, ppid, ticks, rssPages: Math.max(0, rssPages), startTime };
}

/**
 * Parses `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`.
 * Fields nvidia-smi cannot report (`[N/A]`, `[Not Supported]`) are left out; memory is converted from MiB.
 */
export function parseNvidiaSmiCsv(text: string): GpuSample[] {
	const gpus: GpuSample[] = [];
	for (const line of text.split(/\r?\n/)) {
		if (!line.trim()) continue;
		const [index, util, used, total] = line.split(",").map((c) => c.trim());
		const i = wholeNumber(index);
		if (i === undefined) continue;
		const gpu: GpuSample = { index: i };
		const u = Number(util);
		if (util !== "" && Number.isFinite(u) && u >= 0) gpu.util_percent = u;
		const usedMiB = Number(used);
		if (used !== "" && Number.isFinite(usedMiB) && usedMiB >= 0) gpu.memory_bytes = Math.round(usedMiB * MIB);
		const totalMiB = Number(total);
		if (total !== "" && Number.isFinite(totalMiB) && totalMiB >= 0) gpu.memory_total_bytes = Math.round(totalMiB * MIB);
		gpus.push(gpu);
		if (gpus.length === MAX_GPUS) break;
	}
	return gpus;
}

export class ResourceSampler {
	private readonly procRoot: string;
	private readonly gpuTimeoutMs: number;
	private nvidiaSmi: string | null;
	private gpuFailures = 0;
	private system?: Promise<{ pageSize: number; clockTicks: number }>;
	/** Ticks per process (`pid:starttime`) at the previous sample. */
	private previous?: { at: bigint; ticks: Map<string, number> };

	constructor(
		private readonly target: SamplerTarget,
		opts: SamplerOptions = {},
	) {
		this.procRoot = opts.procRoot ?? "/proc";
		this.nvidiaSmi = opts.nvidiaSmi === undefined ? "nvidia-smi" : opts.nvidiaSmi;
		this.gpuTimeoutMs = opts.gpuTimeoutMs ?? 2000;
	}

	/** True while GPUs are still queried (false once nvidia-smi was found absent or kept failing). */
	get gpuEnabled(): boolean {
		return this.nvidiaSmi !== null;
	}

	/** CPU percent is over the time since the previous sample (100 = one core); the first sample reports 0. */
	async sample(): Promise<Resources> {
		const [procs, gpus, system] = await Promise.all([this.readTargets(), this.queryGpus(), this.systemConstants()]);
		const at = process.hrtime.bigint();
		const ticks = new Map<string, number>();
		let rssPages = 0;
		for (const p of procs) {
			ticks.set(`${p.pid}:${p.startTime}`, p.ticks);
			rssPages += p.rssPages;
		}
		let cpu = 0;
		if (this.previous) {
			let delta = 0;
			// Per process, so that one exiting between samples does not make the sum go backwards. A process
			// new since the previous sample ran only since then: all its ticks count.
			for (const [id, now] of ticks) delta += Math.max(0, now - (this.previous.ticks.get(id) ?? 0));
			const seconds = Number(at - this.previous.at) / 1e9;
			if (seconds > 0) cpu = (delta / system.clockTicks / seconds) * 100;
		}
		this.previous = { at, ticks };
		const out: Resources = { cpu_percent: round2(cpu), memory_bytes: rssPages * system.pageSize };
		if (gpus) out.gpus = gpus;
		return out;
	}

	/** The processes to count: the tree under rootPid, or everyone but this sidecar. */
	private async readTargets(): Promise<ProcStat[]> {
		const all = await this.readAll();
		const children = new Map<number, number[]>();
		for (const p of all.values()) {
			const list = children.get(p.ppid);
			if (list) list.push(p.pid);
			else children.set(p.ppid, [p.pid]);
		}
		const subtree = (root: number): Set<number> => {
			const seen = new Set<number>();
			const stack = [root];
			while (stack.length) {
				const pid = stack.pop()!;
				if (seen.has(pid) || !all.has(pid)) continue;
				seen.add(pid);
				stack.push(...(children.get(pid) ?? []));
			}
			return seen;
		};
		if ("rootPid" in this.target) return [...subtree(this.target.rootPid)].map((pid) => all.get(pid)!);
		// Sharing the pod's process namespace: everything but this process, its ancestors (the pause process) and
		// its own children (nvidia-smi, say).
		const excluded = subtree(process.pid);
		for (let pid = process.ppid; pid > 0 && !excluded.has(pid); pid = all.get(pid)?.ppid ?? 0) excluded.add(pid);
		return [...all.values()].filter((p) => !excluded.has(p.pid));
	}

	private async readAll(): Promise<Map<number, ProcStat>> {
		const all = new Map<number, ProcStat>();
		let names: string[];
		try {
			names = await readdir(this.procRoot);
		} catch {
			return all;
		}
		await Promise.all(
			names
				.filter((n) => /^\d+$/.test(n))
				.map(async (n) => {
					try {
						const stat = parseProcStat(await readFile(`${this.procRoot}/${n}/stat`, "utf8"));
						if (stat) all.set(stat.pid, stat);
					} catch {
						// Exited between readdir and read.
					}
				}),
		);
		return all;
	}

	private async queryGpus(): Promise<GpuSample[] | undefined> {
		const cmd = this.nvidiaSmi;
		if (cmd === null) return undefined;
		const args = [
			"--query-gpu=index,utilization.gpu,memory.used,memory.total",
			"--format=csv,noheader,nounits",
		];
		try {
			const stdout = await run(cmd, args, this.gpuTimeoutMs);
			this.gpuFailures = 0;
			return parseNvidiaSmiCsv(stdout);
		} catch (err) {
			// Not installed: never ask again. Failing (no driver, timeout): give up after a few tries in a row.
			const absent = (err as NodeJS.ErrnoException).code === "ENOENT";
			if (absent || ++this.gpuFailures >= GPU_FAILURES_TO_GIVE_UP) this.nvidiaSmi = null;
			return undefined;
		}
	}

	/** Page size and clock ticks per second, asked of getconf once (4096 and 100 when it cannot tell). */
	private systemConstants(): Promise<{ pageSize: number; clockTicks: number }> {
		this.system ??= Promise.all([getconf("PAGESIZE", 4096), getconf("CLK_TCK", 100)]).then(
			([pageSize, clockTicks]) => ({ pageSize, clockTicks }),
		);
		return this.system;
	}
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
	return new Promise((resolve, reject) => {
		execFile(cmd, args, { timeout: timeoutMs, killSignal: "SIGKILL", encoding: "utf8" }, (err, stdout) =>
			err ? reject(err) : resolve(stdout),
		);
	});
}

async function getconf(name: string, fallback: number): Promise<number> {
	try {
		const n = wholeNumber((await run("getconf", [name], 2000)).trim());
		return n !== undefined && n > 0 ? n : fallback;
	} catch {
		return fallback;
	}
}

function wholeNumber(s: string | undefined): number | undefined {
	if (s === undefined || !/^\d{1,9}$/.test(s)) return undefined;
	return Number(s);
}

function round2(x: number): number {
	return Math.round(x * 100) / 100;
}
