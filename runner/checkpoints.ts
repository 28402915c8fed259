import { mkdir, readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { Artifact } from "../events/telemetry";

/**
 * Watches the checkpoint directory and uploads every new or changed file once it is complete. Polling rather than
 * fs.watch: it works the same on every filesystem (overlay, NFS, emptyDir) and "complete" needs a settling check
 * anyway.
 */

export interface CheckpointWatcherOptions {
	dir: string;
	/** Uploads one file; the returned artifact is reported by onUploaded and artifacts(). */
	upload(absPath: string, relPath: string): Promise<Artifact>;
	/** Poll period (default 1000 ms). A file is complete when it did not change over one period. */
	intervalMs?: number;
	onUploaded?(artifact: Artifact): void;
	/** An upload or scan failed; a failed upload is tried again at the next poll. */
	onError?(err: unknown, relPath?: string): void;
}

interface Seen {
	size: number;
	mtimeMs: number;
}

/** Half-written files by convention: the trainer renames them when done. */
const INCOMPLETE = /\.(?:tmp|partial)$/;

export class CheckpointWatcher {
	readonly dir: string;
	private readonly intervalMs: number;
	/** Size and mtime of each file at the previous poll. */
	private readonly seen = new Map<string, Seen>();
	/** Versions (`path\0size\0mtime`) already uploaded. */
	private readonly done = new Set<string>();
	private readonly uploaded: Artifact[] = [];
	private timer?: NodeJS.Timeout;
	/** The poll under way: polls never overlap, and stop() waits for it. */
	private current: Promise<void> = Promise.resolve();
	private stopped = false;

	constructor(private readonly opts: CheckpointWatcherOptions) {
		this.dir = opts.dir;
		this.intervalMs = opts.intervalMs ?? 1000;
	}

	/** Creates the directory if missing and starts polling. */
	async start(): Promise<void> {
		await mkdir(this.dir, { recursive: true });
		this.schedule();
	}

	/**
	 * Stops polling and waits for the upload under way. With flush (the trainer has exited, nothing is still
	 * being written), a last scan uploads every remaining file without waiting for it to settle.
	 */
	async stop(opts: { flush?: boolean } = {}): Promise<void> {
		this.stopped = true;
		clearTimeout(this.timer);
		await this.current;
		if (opts.flush) await this.poll({ settled: false });
	}

	/** Every artifact uploaded so far, in upload order (a file changed and uploaded again appears twice). */
	artifacts(): Artifact[] {
		return [...this.uploaded];
	}

	/**
	 * One scan: uploads each file whose size and mtime are the same as at the previous scan (or every file, with
	 * settled: false) and whose version was not uploaded yet. Runs after the one under way.
	 */
	poll(opts: { settled?: boolean } = {}): Promise<void> {
		const next = this.current.then(() => this.scan(opts.settled ?? true));
		this.current = next;
		return next;
	}

	private schedule(): void {
		if (this.stopped) return;
		this.timer = setTimeout(() => {
			void this.poll().then(() => this.schedule());
		}, this.intervalMs);
	}

	/** Never rejects: failures go to onError. */
	private async scan(settled: boolean): Promise<void> {
		let files: Map<string, Seen>;
		try {
			files = await this.list();
		} catch (err) {
			this.report(err);
			return;
		}
		for (const [rel, now] of files) {
			const before = this.seen.get(rel);
			this.seen.set(rel, now);
			const version = `${rel}\0${now.size}\0${now.mtimeMs}`;
			if (this.done.has(version)) continue;
			const stable = before !== undefined && before.size === now.size && before.mtimeMs === now.mtimeMs;
			if (settled && !stable) continue;
			let artifact: Artifact;
			try {
				artifact = await this.opts.upload(join(this.dir, rel), rel);
			} catch (err) {
				this.report(err, rel);
				continue;
			}
			this.done.add(version);
			this.uploaded.push(artifact);
			try {
				this.opts.onUploaded?.(artifact);
			} catch (err) {
				this.report(err, rel);
			}
		}
		for (const rel of this.seen.keys()) if (!files.has(rel)) this.seen.delete(rel);
	}

	/** Regular files under dir, by path relative to it (with '/'), skipping hidden and half-written ones. */
	private async list(): Promise<Map<string, Seen>> {
		const files = new Map<string, Seen>();
		const walk = async (dir: string): Promise<void> => {
			let entries;
			try {
				entries = await readdir(dir, { withFileTypes: true });
			} catch (err) {
				// A subfolder removed while we walk is not an error; the directory itself missing is.
				if (dir !== this.dir && (err as NodeJS.ErrnoException).code === "ENOENT") return;
				throw err;
			}
			for (const e of entries) {
				if (e.name.startsWith(".")) continue;
				const abs = join(dir, e.name);
				if (e.isDirectory()) {
					await walk(abs);
				} else if (e.isFile() && !INCOMPLETE.test(e.name)) {
					// Symlinks are not followed: they could point outside the checkpoint directory.
					try {
						const s = await stat(abs);
						files.set(relative(this.dir, abs).split(sep).join("/"), { size: s.size, mtimeMs: s.mtimeMs });
					} catch {
						// Renamed or deleted since readdir.
					}
				}
			}
		};
		await walk(this.dir);
		return files;
	}

	private report(err: unknown, rel?: string): void {
		try {
			this.opts.onError?.(err, rel);
		} catch {
			// A failing error callback must not break the timer.
		}
	}
}
