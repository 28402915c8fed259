import { createHash } from "node:crypto";
import { copyFile, mkdir, rename, rm } from "node:fs/promises";
import { createReadStream } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * The blob port: where checkpoints, artifacts and dataset files are kept. The embedded adapter is a folder;
 * an object-store adapter (S3) plugs in behind the same interface.
 */
export interface StoredBlob {
	uri: string;
	bytes: number;
	sha256: string;
}

export interface BlobStore {
	/** Stores the file at `path` under `key` (a relative, '/'-separated name). */
	putFile(key: string, path: string): Promise<StoredBlob>;
}

export class BlobKeyError extends Error {
	override name = "BlobKeyError";
}

/** A write the store itself refused (disk full, read-only, no permission): the sentence names the cause. */
export class BlobWriteError extends Error {
	override name = "BlobWriteError";
	constructor(
		message: string,
		/** The system's error code (ENOSPC, EROFS, EACCES...), for callers that retry only some. */
		readonly code: string | undefined,
	) {
		super(message);
	}
}

const WRITE_CAUSES: Record<string, string> = {
	ENOSPC: "the disk is full",
	EDQUOT: "the disk quota is used up",
	EROFS: "the file system is read-only",
	EACCES: "permission denied",
	EPERM: "permission denied",
};

const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Refuses keys that could leave the store's root ('..', absolute paths, odd characters). */
export function checkKey(key: string): string {
	if (!KEY.test(key) || key.split("/").some((part) => part === "." || part === "..")) {
		throw new BlobKeyError(`blob key ${JSON.stringify(key)} is not a relative path of letters, digits, '.', '_', '-'`);
	}
	return key;
}

export async function sha256OfFile(path: string): Promise<{ sha256: string; bytes: number }> {
	const hash = createHash("sha256");
	let bytes = 0;
	for await (const chunk of createReadStream(path)) {
		hash.update(chunk as Buffer);
		bytes += (chunk as Buffer).length;
	}
	return { sha256: hash.digest("hex"), bytes };
}

/** Blobs as files under a root folder (`file:///...`). Writes go to a temp name first, so readers never see half a file. */
export class FileBlobStore implements BlobStore {
	readonly root: string;

	constructor(root: string) {
		this.root = resolve(root);
	}

	async putFile(key: string, path: string): Promise<StoredBlob> {
		const target = join(this.root, ...checkKey(key).split("/"));
		if (!target.startsWith(this.root + sep)) throw new BlobKeyError(`blob key ${JSON.stringify(key)} leaves the store`);
		const tmp = `${target}.${process.pid}.partial`;
		try {
			await mkdir(dirname(target), { recursive: true });
			await copyFile(path, tmp);
			const { sha256, bytes } = await sha256OfFile(tmp);
			await rename(tmp, target);
			return { uri: pathToFileURL(target).href, bytes, sha256 };
		} catch (err) {
			// Half a copy on a full disk would only keep it full.
			await rm(tmp, { force: true }).catch(() => undefined);
			const code = (err as NodeJS.ErrnoException).code;
			const cause = (code && WRITE_CAUSES[code]) ?? (err as Error).message;
			throw new BlobWriteError(`cannot store blob ${key} in ${pathToFileURL(this.root).href}: ${cause}${code ? ` (${code})` : ""}`, code);
		}
	}
}

/** The adapter for a storage URL (`file:///var/lib/savassan/blobs`). */
export function openBlobStore(url: string): BlobStore {
	let parsed: URL;
	try {
		parsed = new URL(url);
	} catch {
		throw new BlobKeyError(`storage URL ${JSON.stringify(url)} is not a URL`);
	}
	if (parsed.protocol === "file:") return new FileBlobStore(fileURLToPath(parsed));
	throw new BlobKeyError(`storage URL scheme ${parsed.protocol} is not supported here (use file://)`);
}
