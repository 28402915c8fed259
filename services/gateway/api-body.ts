import { Errors } from "moleculer";
import type { HttpResponse } from "uWebSockets.js";

/**
 * The JSON body of a POST or PUT: refused before a byte is read when its declared size or type is wrong, cut off
 * once it grows past the limit when it comes chunked (no size declared), and otherwise parsed into the params object.
 */

/** A refusal with its HTTP status; toErrorBody turns it into the one error body. */
export function clientError(status: number, code: string, message: string, field?: string): Errors.MoleculerClientError {
	return new Errors.MoleculerClientError(message, status, code, field ? { field } : undefined);
}

/** The request headers that say whether a body comes, how big and in what format. */
export interface BodyHeaders {
	contentType: string;
	contentLength: string;
	transferEncoding: string;
}

export const hasBody = (h: BodyHeaders): boolean => (h.contentLength !== "" && h.contentLength !== "0") || h.transferEncoding !== "";

const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i;

/** Why the body is refused without reading it, or undefined. */
export function refuseBeforeReading(h: BodyHeaders, maxBytes: number): Errors.MoleculerClientError | undefined {
	if (!hasBody(h)) return undefined;
	if (h.contentLength !== "" && Number(h.contentLength) > maxBytes) {
		return clientError(413, "TOO_LARGE", `the body has ${h.contentLength} bytes; the API accepts at most ${maxBytes}`);
	}
	if (!JSON_TYPE.test(h.contentType)) {
		return clientError(415, "UNSUPPORTED_MEDIA_TYPE", `the body must be application/json, not ${h.contentType ? `'${h.contentType}'` : "of an undeclared type"}`);
	}
	return undefined;
}

/**
 * Reads the whole body (registers uWS's data handler, so call it before the handler returns); rejects with 413 as
 * soon as more than `maxBytes` arrived. The response must already have its onAborted handler.
 */
export function readBody(res: HttpResponse, maxBytes: number): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let received = 0;
		let refused = false;
		res.onData((chunk, isLast) => {
			if (refused) return;
			received += chunk.byteLength;
			if (received > maxBytes) {
				refused = true;
				return reject(clientError(413, "TOO_LARGE", `the body exceeds the ${maxBytes} bytes the API accepts`));
			}
			// The chunk is neutered when this handler returns: copy it.
			chunks.push(Buffer.from(chunk.slice(0)));
			if (isLast) resolve(Buffer.concat(chunks));
		});
	});
}

/** The params object of a JSON body; an empty body is {}. */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
	if (body.length === 0) return {};
	let value: unknown;
	try {
		value = JSON.parse(body.toString("utf8"));
	} catch (err) {
		throw clientError(400, "INVALID_JSON", `the body is not valid JSON: ${(err as Error).message}`);
	}
	if (value === null || typeof value !== "object" || Array.isArray(value)) {
		throw clientError(400, "INVALID_BODY", `the body must be a JSON object, not ${value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`}`);
	}
	return value as Record<string, unknown>;
}
