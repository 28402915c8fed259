import { createHash, randomUUID } from "node:crypto";
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { createReadStream, createWriteStream } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BLOB_ROUTE, MAX_SIGNED_URL_TTL_SEC, newNonce, signGrant, type BlobGrant } from "./signed-url";

/**
 * The blob port: where checkpoints, artifacts and dataset files are kept. The embedded adapter is a folder;
 * an object-store adapter (S3) plugs in behind the same interface.
 */
export interface StoredBlob {
	uri: string;
	bytes: number;
	sha256: string;
}

/** A request a client makes on its own (upload or download), valid until `expires_at`. */
export interface PresignedRequest {
	url: string;
	method: "PUT" | "GET";
	/** Headers the client must send as given. */
	headers: Record<string, string>;
	expires_at: string;
}

export interface PresignPutOptions {
	expiresSec: number;
	/** The exact size the upload announces: a larger body is refused. */
	contentLength?: number;
	/** Hex sha256 the upload announces. */
	sha256?: string;
}

export interface BlobStore {
	/** Stores the file at `path` under `key` (a relative, '/'-separated name). */
	putFile(key: string, path: string): Promise<StoredBlob>;
	putBytes(key: string, bytes: Uint8Array): Promise<StoredBlob>;
	/** Size of the blob, undefined when there is none. */
	stat(key: string): Promise<{ bytes: number } | undefined>;
	/** The blob's bytes as a stream, undefined when there is none. */
	read(key: string): Promise<Readable | undefined>;
	/** Keys that start with `prefix`, sorted. */
	list(prefix: string): Promise<string[]>;
	/** Removes the blob; nothing happens when there is none. */
	delete(key: string): Promise<void>;
	presignPut(key: string, opts: PresignPutOptions): Promise<PresignedRequest>;
	presignGet(key: string, opts: { expiresSec: number }): Promise<PresignedRequest>;
	/** Releases connections (an object store's client); the file store has none. */
	close?(): void;
}

/** Size and sha256 of a stored blob, read back through the port (so it holds for every adapter). */
export async function digestBlob(store: BlobStore, key: string): Promise<{ bytes: number; sha256: string } | undefined> {
	const stream = await store.read(key);
	return stream && sha256OfStream(stream);
}

/** A presign lifetime the adapters accept: whole seconds, 1 s to 7 days. */
export function checkExpiry(expiresSec: number): number {
	if (!Number.isInteger(expiresSec) || expiresSec < 1 || expiresSec > MAX_SIGNED_URL_TTL_SEC) {
		throw new BlobKeyError(`a signed URL lives from 1 to ${MAX_SIGNED_URL_TTL_SEC} seconds, not ${expiresSec}`);
	}
	return expiresSec;
}

/** How the embedded store signs its URLs: the key, and the gateway address clients reach. */
export interface UrlSigner {
	key: Buffer;
	publicUrl: string;
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

/** Size and sha256 of what a stream yields. */
async function sha256OfStream(stream: AsyncIterable<unknown>): Promise<{ sha256: string; bytes: number }> {
	const hash = createHash("sha256");
	let bytes = 0;
	for await (const chunk of stream) {
		hash.update(chunk as Buffer);
		bytes += (chunk as Buffer).length;
	}
	return { sha256: hash.digest("hex"), bytes };
}

export function sha256OfFile(path: string): Promise<{ sha256: string; bytes: number }> {
	return sha256OfStream(createReadStream(path));
}

const PARTIAL = ".partial";

/**
 * Blobs as files under a root folder (`file:///...`). Writes go to a temp name first, so readers never see half a
 * file. Its presigned URLs point at the gateway's `/v1/blobs/<token>` (see lib/signed-url.ts).
 */
export class FileBlobStore implements BlobStore {
	readonly root: string;

	constructor(
		root: string,
		private readonly signer?: UrlSigner,
	) {
		this.root = resolve(root);
	}

	putFile(key: string, path: string): Promise<StoredBlob> {
		return this.write(key, (tmp) => copyFile(path, tmp));
	}

	putBytes(key: string, bytes: Uint8Array): Promise<StoredBlob> {
		return this.write(key, (tmp) => writeFile(tmp, bytes));
	}

	/** Stores what `source` yields; a source that fails (a client gone) leaves nothing behind. */
	putStream(key: string, source: Readable): Promise<StoredBlob> {
		// The source may fail while the folder is being made, before the pipeline listens; the pipeline still sees
		// the failure, and this keeps it from being an uncaught 'error' event meanwhile.
		source.once("error", () => undefined);
		return this.write(key, (tmp) => pipeline(source, createWriteStream(tmp)));
	}

	async stat(key: string): Promise<{ bytes: number } | undefined> {
		const info = await stat(this.pathOf(key)).catch(missing);
		return info?.isFile() ? { bytes: info.size } : undefined;
	}

	async read(key: string): Promise<Readable | undefined> {
		const path = this.pathOf(key);
		// Opened before returning, so a missing blob is an undefined, not a stream that fails later.
		const stream = createReadStream(path);
		const opened = await new Promise<boolean>((resolveOpen, reject) => {
			stream.once("open", () => resolveOpen(true));
			stream.once("error", (err: NodeJS.ErrnoException) => (err.code === "ENOENT" ? resolveOpen(false) : reject(err)));
		});
		return opened ? stream : undefined;
	}

	async list(prefix: string): Promise<string[]> {
		const entries = await readdir(this.root, { recursive: true, withFileTypes: true }).catch(missing);
		return (entries ?? [])
			.filter((e) => e.isFile() && !e.name.endsWith(PARTIAL))
			.map((e) => relative(this.root, join(e.parentPath, e.name)).split(sep).join("/"))
			.filter((key) => key.startsWith(prefix))
			.sort();
	}

	async delete(key: string): Promise<void> {
		await rm(this.pathOf(key), { force: true });
	}

	async presignPut(key: string, opts: PresignPutOptions): Promise<PresignedRequest> {
		return this.presign({
			method: "PUT",
			key: checkKey(key),
			expiresAt: this.expiry(opts.expiresSec),
			...(opts.contentLength !== undefined ? { contentLength: opts.contentLength } : {}),
			...(opts.sha256 ? { sha256: opts.sha256 } : {}),
			nonce: newNonce(),
		});
	}

	async presignGet(key: string, opts: { expiresSec: number }): Promise<PresignedRequest> {
		return this.presign({ method: "GET", key: checkKey(key), expiresAt: this.expiry(opts.expiresSec) });
	}

	private expiry(expiresSec: number): number {
		return Math.floor(Date.now() / 1000) + checkExpiry(expiresSec);
	}

	private presign(grant: BlobGrant): PresignedRequest {
		if (!this.signer) throw new BlobKeyError(`the blob store at ${pathToFileURL(this.root).href} has no signing key: it cannot hand out URLs`);
		const headers: Record<string, string> = grant.contentLength !== undefined ? { "content-length": String(grant.contentLength) } : {};
		return {
			url: `${this.signer.publicUrl}${BLOB_ROUTE}${signGrant(this.signer.key, grant)}`,
			method: grant.method,
			headers,
			expires_at: new Date(grant.expiresAt * 1000).toISOString(),
		};
	}

	private pathOf(key: string): string {
		const target = join(this.root, ...checkKey(key).split("/"));
		if (!target.startsWith(this.root + sep)) throw new BlobKeyError(`blob key ${JSON.stringify(key)} leaves the store`);
		return target;
	}

	private async write(key: string, writeTmp: (tmp: string) => Promise<void>): Promise<StoredBlob> {
		const target = this.pathOf(key);
		// Unique per write: two uploads of one key must not share a temp file.
		const tmp = `${target}.${process.pid}-${randomUUID().slice(0, 8)}${PARTIAL}`;
		try {
			await mkdir(dirname(target), { recursive: true });
			await writeTmp(tmp);
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

/** undefined for a file that is not there; any other error is rethrown. */
function missing(err: unknown): undefined {
	if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
	throw err;
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
