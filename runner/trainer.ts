import { spawn, type ChildProcess } from "node:child_process";
import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { ATTACH_FILES } from "../lib/run-env";
import { terminateGroup } from "../lib/process-group";

/**
 * The training process as the sidecar sees it: lines of output, an exit, a way to stop it. Either a child the
 * sidecar spawns (spawnTrainer), or, on kubernetes, a container next to it that it follows through files in a
 * shared folder (attachTrainer).
 */

export type TrainerStream = "stdout" | "stderr";
export type LineListener = (stream: TrainerStream, line: string) => void;

export interface TrainerExit {
	code: number | null;
	signal: string | null;
}

export interface Trainer {
	pid?: number;
	/** Lines printed before the first listener is added are kept and given to it. */
	onLine(cb: LineListener): void;
	/** Resolves once the trainer has exited and its output has been read; never rejects. */
	exited: Promise<TrainerExit>;
	terminate(graceMs?: number): Promise<void>;
}

/** Longer lines are cut: a trainer printing megabytes without a newline must not grow the sidecar's memory. */
export const MAX_LINE_BYTES = 16 * 1024;
/** Lines kept while nobody listens yet. */
const MAX_PENDING_LINES = 10_000;
/** Exit codes a shell gives a command it cannot run. */
const NOT_FOUND = 127;
const NOT_EXECUTABLE = 126;

/**
 * Splits a byte stream into lines on \n, \r\n and a bare \r (progress bars redraw with \r). Works on bytes, so a
 * UTF-8 character split across chunks is decoded whole; a line over maxBytes is cut at a character boundary.
 * An empty line made by \r (a bar's redraw) is dropped; an empty line made by \n is a line.
 */
export class LineSplitter {
	private parts: Buffer[] = [];
	private length = 0;
	/** The previous byte was \r: a \n right after it ends nothing. */
	private afterCR = false;

	constructor(
		private readonly emit: (line: string) => void,
		private readonly maxBytes = MAX_LINE_BYTES,
	) {}

	push(chunk: Buffer): void {
		let start = 0;
		for (let i = 0; i < chunk.length; i++) {
			const b = chunk[i];
			if (b !== 0x0a && b !== 0x0d) continue;
			if (b === 0x0a && this.afterCR && i === start && this.length === 0) {
				this.afterCR = false;
				start = i + 1;
				continue;
			}
			this.append(chunk.subarray(start, i));
			this.endLine(b === 0x0d);
			this.afterCR = b === 0x0d;
			start = i + 1;
		}
		if (start < chunk.length) {
			this.afterCR = false;
			this.append(chunk.subarray(start));
		}
	}

	/** The stream has ended: the last line may have no newline. */
	end(): void {
		if (this.length > 0) this.endLine(false);
		this.afterCR = false;
	}

	private append(bytes: Buffer): void {
		if (bytes.length === 0) return;
		// Copied: the caller may reuse its buffer.
		this.parts.push(Buffer.from(bytes));
		this.length += bytes.length;
		if (this.length <= this.maxBytes) return;
		let rest = Buffer.concat(this.parts);
		while (rest.length > this.maxBytes) {
			let cut = this.maxBytes;
			// Back up to the first byte of a UTF-8 character (continuation bytes are 10xxxxxx).
			while (cut > 0 && (rest[cut] & 0xc0) === 0x80) cut--;
			if (cut === 0) cut = this.maxBytes;
			this.emit(rest.subarray(0, cut).toString("utf8"));
			rest = rest.subarray(cut);
		}
		this.parts = rest.length ? [rest] : [];
		this.length = rest.length;
	}

	private endLine(byCR: boolean): void {
		const line = Buffer.concat(this.parts, this.length).toString("utf8");
		this.parts = [];
		this.length = 0;
		if (line === "" && byCR) return;
		this.emit(line);
	}
}

/** Hands lines to listeners, keeping those that come before the first listener. */
class LineHub {
	private readonly listeners: LineListener[] = [];
	private pending: Array<[TrainerStream, string]> | undefined = [];

	add(cb: LineListener): void {
		this.listeners.push(cb);
		const pending = this.pending;
		this.pending = undefined;
		for (const [stream, line] of pending ?? []) this.call(cb, stream, line);
	}

	emit(stream: TrainerStream, line: string): void {
		if (this.pending) {
			if (this.pending.length < MAX_PENDING_LINES) this.pending.push([stream, line]);
			return;
		}
		for (const cb of this.listeners) this.call(cb, stream, line);
	}

	private call(cb: LineListener, stream: TrainerStream, line: string): void {
		try {
			cb(stream, line);
		} catch (err) {
			// A listener's bug must not stop the other listeners nor the pipe that feeds them.
			process.emitWarning(`trainer line listener failed: ${(err as Error)?.message ?? err}`);
		}
	}
}

/**
 * Runs argv (no shell) in its own process group, so that terminate() reaches every process the trainer
 * started (data loader workers, a launcher's children). Never throws: a command that cannot be started exits
 * with 127 (not found) or 126, like in a shell, and says why on stderr.
 */
export function spawnTrainer(argv: string[], env: NodeJS.ProcessEnv): Trainer {
	const hub = new LineHub();
	if (argv.length === 0 || !argv[0]) return notStarted(hub, NOT_FOUND, "no trainer command given");
	let child: ChildProcess;
	try {
		child = spawn(argv[0], argv.slice(1), { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
	} catch (err) {
		// Synchronous failures: an argument holding a NUL byte, say.
		return notStarted(hub, NOT_FOUND, `${argv[0]}: ${(err as Error).message}`);
	}
	const splitters = {
		stdout: new LineSplitter((line) => hub.emit("stdout", line)),
		stderr: new LineSplitter((line) => hub.emit("stderr", line)),
	};
	for (const stream of ["stdout", "stderr"] as const) {
		child[stream]!.on("data", (chunk: Buffer) => splitters[stream].push(chunk));
		child[stream]!.on("end", () => splitters[stream].end());
	}

	const exited = new Promise<TrainerExit>((resolve) => {
		child.on("error", (err: NodeJS.ErrnoException) => {
			// Errors after a successful start (a failed kill) change nothing about the exit.
			if (child.pid !== undefined) return;
			const notFound = err.code === "ENOENT";
			hub.emit("stderr", notFound ? `${argv[0]}: command not found` : `${argv[0]}: cannot run: ${err.message}`);
			resolve({ code: notFound ? NOT_FOUND : NOT_EXECUTABLE, signal: null });
		});
		// 'close' comes after the output pipes end, so every line is out before `exited`. A grandchild that
		// inherited the pipes can keep them open after the trainer exited: then do not wait for more than 1 s.
		child.on("close", (code, signal) => resolve({ code, signal }));
		child.on("exit", (code, signal) => {
			setTimeout(() => resolve({ code, signal }), 1000).unref();
		});
	});

	return {
		pid: child.pid,
		onLine: (cb) => hub.add(cb),
		exited,
		async terminate(graceMs = 10_000) {
			if (child.pid === undefined) return;
			await terminateGroup(child.pid, graceMs);
			await exited;
		},
	};
}

function notStarted(hub: LineHub, code: number, message: string): Trainer {
	hub.emit("stderr", message); // kept until the first listener
	return {
		onLine: (cb) => hub.add(cb),
		exited: Promise.resolve({ code, signal: null }),
		terminate: async () => {},
	};
}

/**
 * Kubernetes: the trainer runs in another container of the pod and writes its output to `<dir>/trainer.log`
 * and, when it ends, its exit code to `<dir>/exit-code`. Follows the log like `tail -F` (it may not exist yet,
 * may be truncated or replaced); `exited` resolves once the exit code is there and the rest of the log is read.
 * terminate() only stops following (the pod's owner stops the container); `exited` then resolves with
 * code and signal null, so that nobody waits forever.
 */
export function attachTrainer(dir: string, opts: { pollMs?: number } = {}): Trainer {
	const pollMs = opts.pollMs ?? 250;
	const logPath = join(dir, ATTACH_FILES.log);
	const exitPath = join(dir, ATTACH_FILES.exitCode);
	const hub = new LineHub();
	const splitter = new LineSplitter((line) => hub.emit("stdout", line));
	const buffer = Buffer.alloc(64 * 1024);
	let file: { handle: FileHandle; ino: number } | undefined;
	let offset = 0;
	let stopped = false;
	let wake: (() => void) | undefined;
	let resolveExit!: (exit: TrainerExit) => void;
	const exited = new Promise<TrainerExit>((resolve) => (resolveExit = resolve));

	const drain = async (): Promise<void> => {
		if (!file) return;
		for (;;) {
			const { bytesRead } = await file.handle.read(buffer, 0, buffer.length, offset);
			if (bytesRead === 0) return;
			offset += bytesRead;
			splitter.push(buffer.subarray(0, bytesRead));
		}
	};

	const readLog = async (): Promise<void> => {
		let now;
		try {
			now = await stat(logPath);
		} catch {
			return drain(); // Not there (yet, or removed): what is open can still be read.
		}
		if (file && now.ino !== file.ino) {
			// Replaced (rotated): finish the old file, then start the new one from its beginning.
			await drain();
			await file.handle.close();
			file = undefined;
		} else if (file && now.size < offset) {
			offset = 0; // Truncated in place.
		}
		if (!file) {
			const handle = await open(logPath, "r");
			file = { handle, ino: (await handle.stat()).ino };
			offset = 0;
		}
		await drain();
	};

	const loop = (async () => {
		while (!stopped) {
			try {
				// The exit code first: once it is there, the log is complete, and reading it once more gets it all.
				const code = await readExitCode(exitPath);
				await readLog();
				if (code !== undefined) {
					splitter.end();
					resolveExit({ code, signal: null });
					return;
				}
			} catch {
				// A transient filesystem error: try again at the next poll.
			}
			if (stopped) break;
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, pollMs);
				wake = () => {
					clearTimeout(timer);
					resolve();
				};
			});
		}
	})().finally(() => file?.handle.close().catch(() => {}));

	return {
		onLine: (cb) => hub.add(cb),
		exited,
		async terminate() {
			stopped = true;
			wake?.();
			await loop;
			resolveExit({ code: null, signal: null });
		},
	};
}

/** The number in the exit-code file; undefined while it is missing or not fully written. */
async function readExitCode(path: string): Promise<number | undefined> {
	let text: string;
	try {
		text = await readFile(path, "utf8");
	} catch {
		return undefined;
	}
	const m = /^\s*(-?\d{1,10})\s*$/.exec(text);
	return m ? Number(m[1]) : undefined;
}
