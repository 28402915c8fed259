import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { isRevisionConflict, openBucket } from "./kv";

/**
 * Signed, expiring URLs for the embedded blob store: the gateway serves `/v1/blobs/<token>` to whoever holds a
 * token, so everything the holder may do (method, key, expiry, exact size and checksum of an upload, its one-time
 * nonce) is inside the token and covered by an HMAC-SHA256 of the platform's signing key.
 */

export type BlobMethod = "PUT" | "GET";

export interface BlobGrant {
	method: BlobMethod;
	key: string;
	/** Epoch seconds after which the URL is refused. */
	expiresAt: number;
	/** Most bytes an upload may carry. */
	contentLength?: number;
	/** Hex sha256 the upload announced (checked when the upload is completed). */
	sha256?: string;
	/** One-time id of an upload: a second PUT with the same token is refused. */
	nonce?: string;
}

/** Longest lifetime of a signed URL (S3's own limit for presigned URLs is 7 days too). */
export const MAX_SIGNED_URL_TTL_SEC = 7 * 86_400;

/** The path the gateway serves signed tokens under. */
export const BLOB_ROUTE = "/v1/blobs/";

export class SignedUrlError extends Error {
	override name = "SignedUrlError";
}

const CONTEXT = "savassan-blob-v1\n";

function mac(secret: Buffer, payload: string): Buffer {
	return createHmac("sha256", secret).update(CONTEXT + payload).digest();
}

/** A token: base64url(JSON grant) "." base64url(HMAC). */
export function signGrant(secret: Buffer, grant: BlobGrant): string {
	const payload = Buffer.from(JSON.stringify(grant)).toString("base64url");
	return `${payload}.${mac(secret, payload).toString("base64url")}`;
}

/** The grant of a token, or a SignedUrlError that says why it is refused (forged, altered, expired, wrong method). */
export function verifyGrant(secret: Buffer, token: string, method: BlobMethod, nowMs = Date.now()): BlobGrant {
	const [payload, signature, extra] = token.split(".");
	const forged = new SignedUrlError("this link's signature does not match: it was altered or not issued by this platform");
	if (!payload || !signature || extra !== undefined) throw forged;
	const given = Buffer.from(signature, "base64url");
	const expected = mac(secret, payload);
	if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw forged;
	const grant = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as BlobGrant;
	if (grant.method !== method) throw new SignedUrlError(`this link is for ${grant.method}, not ${method}`);
	if (nowMs >= grant.expiresAt * 1000) throw new SignedUrlError(`this link expired at ${new Date(grant.expiresAt * 1000).toISOString()}`);
	return grant;
}

/** A fresh upload nonce. */
export function newNonce(): string {
	return randomBytes(16).toString("base64url");
}

/**
 * The signing key: BLOB_SIGNING_KEY when given, else a random key created once in `file` (mode 0600). Two processes
 * starting at once agree: the key is written under a temporary name and linked into place, which fails if the
 * other was first, and then everybody reads the file.
 */
export function loadOrCreateSigningKey(opts: { key?: string; file: string }): Buffer {
	if (opts.key) return Buffer.from(opts.key, "utf8");
	try {
		return readKeyFile(opts.file);
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
	}
	mkdirSync(dirname(opts.file), { recursive: true });
	const tmp = `${opts.file}.${process.pid}.tmp`;
	writeFileSync(tmp, randomBytes(32).toString("base64"), { mode: 0o600 });
	try {
		linkSync(tmp, opts.file);
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
	} finally {
		rmSync(tmp, { force: true });
	}
	return readKeyFile(opts.file);
}

function readKeyFile(file: string): Buffer {
	const key = Buffer.from(readFileSync(file, "utf8").trim(), "base64");
	chmodSync(file, 0o600);
	if (key.length < 32) throw new SignedUrlError(`the blob signing key in ${file} is shorter than 32 bytes; delete it to have a new one made`);
	return key;
}

export const UPLOAD_NONCES_BUCKET = "blob_upload_nonces";

/**
 * Nonces of the uploads already started, in a JetStream KV bucket so every gateway instance sees them. A nonce is
 * kept as long as its URL could still be valid; after that the expiry refuses the token anyway.
 */
export class UploadNonces {
	private constructor(private readonly kv: KV) {}

	static async open(js: JetStreamClient, replicas: number): Promise<UploadNonces> {
		const kv = await openBucket(js, UPLOAD_NONCES_BUCKET, {
			history: 1,
			replicas,
			ttl: MAX_SIGNED_URL_TTL_SEC * 1000,
			description: "One-time upload URL nonces (gateway)",
		});
		return new UploadNonces(kv);
	}

	/** True for the first claim of `nonce`, false for any later one. */
	async claim(nonce: string): Promise<boolean> {
		try {
			await this.kv.create(nonce, "");
			return true;
		} catch (err) {
			if (isRevisionConflict(err)) return false;
			throw err;
		}
	}
}
