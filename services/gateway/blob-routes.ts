import type { JetStreamClient } from "@nats-io/jetstream";
import { PassThrough, type Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { HttpRequest, HttpResponse, TemplatedApp } from "uWebSockets.js";
import { BlobWriteError, FileBlobStore } from "../../lib/blob";
import { BLOB_ROUTE, loadOrCreateSigningKey, SignedUrlError, UploadNonces, verifyGrant, type BlobGrant } from "../../lib/signed-url";
import { sendError, sendJson } from "./http";

/**
 * `PUT/GET /v1/blobs/<token>`: the embedded blob store's signed URLs (lib/signed-url.ts). Uploads stream to disk
 * through FileBlobStore with the socket paused whenever the disk is behind, and never take more than the token's
 * signed length; downloads stream from disk as fast as the client reads.
 */

export interface BlobRouteSettings {
	/** The embedded store (file://). */
	storageUrl: string;
	signingKey?: string;
	signingKeyFile: string;
	/** Replicas of the upload nonce bucket. */
	replicas: number;
}

interface BlobRoutes {
	store: FileBlobStore;
	key: Buffer;
	nonces: UploadNonces;
}

/** Opens what the routes need (signing key, nonce bucket); returns the function that mounts them on an app. */
export async function openBlobRoutes(settings: BlobRouteSettings, js: JetStreamClient): Promise<(app: TemplatedApp) => void> {
	const url = new URL(settings.storageUrl);
	if (url.protocol !== "file:") throw new Error(`the gateway serves only the embedded blob store (file://), not ${url.protocol}`);
	const routes: BlobRoutes = {
		store: new FileBlobStore(fileURLToPath(url)),
		key: loadOrCreateSigningKey({ key: settings.signingKey, file: settings.signingKeyFile }),
		nonces: await UploadNonces.open(js, settings.replicas),
	};
	return (app) => {
		app.put(`${BLOB_ROUTE}:token`, (res, req) => receiveUpload(res, req, routes));
		app.get(`${BLOB_ROUTE}:token`, (res, req) => sendBlob(res, req, routes));
	};
}

/** The grant of the request's token, or undefined after answering 403 with the reason. */
function grantOf(res: HttpResponse, req: HttpRequest, routes: BlobRoutes, method: "PUT" | "GET"): BlobGrant | undefined {
	try {
		return verifyGrant(routes.key, req.getParameter(0) ?? "", method);
	} catch (err) {
		// A token that is not even well-formed JSON after a valid signature cannot happen; anything else is a refusal.
		const message = err instanceof SignedUrlError ? err.message : "this link is not valid";
		sendError(res, { status: 403, code: "LINK_REFUSED", message }, true);
		return undefined;
	}
}

function receiveUpload(res: HttpResponse, req: HttpRequest, routes: BlobRoutes): void {
	const grant = grantOf(res, req, routes, "PUT");
	if (!grant) return;
	const declared = req.getHeader("content-length");
	if (!/^\d+$/.test(declared)) return sendError(res, { status: 411, code: "LENGTH_REQUIRED", message: "an upload needs a Content-Length header" }, true);
	const size = Number(declared);
	const cap = grant.contentLength ?? Number.MAX_SAFE_INTEGER;
	if (size > cap) {
		// Refused before a byte of the body is read; closing stops the client from sending the rest.
		return sendError(res, { status: 413, code: "TOO_LARGE", message: `the body has ${size} bytes; this link allows at most ${cap}` }, true);
	}

	const body = new PassThrough();
	let aborted = false;
	let paused = false;
	let received = 0;
	let complete = false;
	res.onAborted(() => {
		aborted = true;
		// Without an error: nobody may listen yet (the nonce is being claimed); the store sees a premature close.
		body.destroy();
	});
	// uWS pauses the socket, not the request: a socket left paused would never read the connection's next request.
	const resume = () => {
		if (!paused || aborted) return;
		paused = false;
		res.resume();
	};
	res.onData((chunk, isLast) => {
		received += chunk.byteLength;
		// uWS frames the body by its Content-Length, which was checked; this guards the cap should that ever change.
		if (received > cap) return void body.destroy();
		// The chunk is neutered when this handler returns: copy it.
		if (!body.write(Buffer.from(chunk.slice(0))) && !paused) {
			paused = true;
			res.pause();
			body.once("drain", resume);
		}
		if (isLast) {
			complete = true;
			// An ending stream emits no 'drain'.
			resume();
			body.end();
		}
	});
	if (size === 0) body.end();

	const answer = (status: number, code: string, message: string) => {
		// A body still on its way is cut off with the connection rather than read for nothing.
		if (!aborted) sendError(res, { status, code, message }, !complete && size > 0);
	};
	void (async () => {
		try {
			if (grant.nonce && !(await routes.nonces.claim(grant.nonce))) {
				body.destroy();
				return answer(403, "LINK_REFUSED", "this upload link was already used; ask for a new one");
			}
		} catch {
			body.destroy();
			return answer(503, "UNAVAILABLE", "the upload link cannot be checked right now; try again shortly");
		}
		try {
			const stored = await routes.store.putStream(grant.key, body);
			if (!aborted) sendJson(res, 200, { bytes: stored.bytes, sha256: stored.sha256 });
		} catch (err) {
			if (aborted) return;
			if (received > cap) return answer(413, "TOO_LARGE", `the body exceeds the ${cap} bytes this link allows`);
			answer(err instanceof BlobWriteError ? 507 : 400, "UPLOAD_FAILED", `the upload was not stored: ${(err as Error).message}`);
		}
	})();
}

function sendBlob(res: HttpResponse, req: HttpRequest, routes: BlobRoutes): void {
	const grant = grantOf(res, req, routes, "GET");
	if (!grant) return;
	let aborted = false;
	let stream: Readable | undefined;
	res.onAborted(() => {
		aborted = true;
		stream?.destroy();
	});
	void (async () => {
		stream = await routes.store.read(grant.key);
		const size = stream && (await routes.store.stat(grant.key));
		if (aborted) return void stream?.destroy();
		if (!stream || !size) {
			stream?.destroy();
			return sendError(res, { status: 404, code: "NOT_FOUND", message: "the file this link names is no longer there" });
		}
		streamTo(res, stream, size.bytes, () => aborted);
	})().catch(() => {
		if (!aborted) sendError(res, { status: 500, code: "READ_FAILED", message: "the file could not be read" });
	});
}

/** Streams `total` bytes with uWS's tryEnd/onWritable backpressure: the file is read only as fast as the client takes it. */
function streamTo(res: HttpResponse, stream: Readable, total: number, isAborted: () => boolean): void {
	res.cork(() => {
		res.writeStatus("200 OK").writeHeader("content-type", "application/octet-stream").writeHeader("cache-control", "no-store");
		if (total === 0) res.end();
	});
	if (total === 0) return void stream.destroy();
	let done = false;
	stream.on("data", (chunk: Buffer) => {
		if (isAborted()) return void stream.destroy();
		const offset = res.getWriteOffset();
		let ok = false;
		res.cork(() => ([ok, done] = res.tryEnd(chunk, total)));
		if (done) return void stream.destroy();
		if (ok) return;
		stream.pause();
		res.onWritable((at) => {
			let retried = false;
			res.cork(() => ([retried, done] = res.tryEnd(chunk.subarray(at - offset), total)));
			if (done) stream.destroy();
			else if (retried) stream.resume();
			return retried;
		});
	});
	// A file that ends short or fails mid-way: the only honest answer left is to cut the connection.
	const cut = () => {
		if (!done && !isAborted()) res.close();
	};
	stream.on("error", cut);
	stream.on("end", cut);
}
