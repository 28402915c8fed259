import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { digestBlob, FileBlobStore } from "../lib/blob";
import { loadOrCreateSigningKey, signGrant, verifyGrant, type BlobGrant } from "../lib/signed-url";

const KEY = Buffer.alloc(32, 9);
const NOW = Date.UTC(2026, 0, 1);
const GRANT: BlobGrant = { method: "PUT", key: "assets/ws/a1", expiresAt: NOW / 1000 + 60, contentLength: 5, nonce: "n1" };

let dir: string;

describe("signed blob URLs and the embedded file store", () => {
	before(() => {
		dir = mkdtempSync(join(tmpdir(), "savassan-blob-file-"));
	});
	after(() => rmSync(dir, { recursive: true, force: true }));

	it("verifies its own tokens until they expire, for their method only", () => {
		const token = signGrant(KEY, GRANT);
		assert.deepEqual(verifyGrant(KEY, token, "PUT", NOW), GRANT);
		assert.throws(() => verifyGrant(KEY, token, "PUT", NOW + 60_000), /^SignedUrlError: this link expired at 2026-01-01T00:01:00.000Z$/);
		assert.throws(() => verifyGrant(KEY, token, "GET", NOW), /this link is for PUT, not GET/);
	});

	it("refuses a token whose grant, signature or key differs", () => {
		const [payload, signature] = signGrant(KEY, GRANT).split(".") as [string, string];
		const other = Buffer.from(JSON.stringify({ ...GRANT, contentLength: 5_000_000 })).toString("base64url");
		for (const token of [`${other}.${signature}`, `${payload}.${signature.slice(1)}`, `${payload}.`, payload, signGrant(Buffer.alloc(32, 8), GRANT), `${payload}.${signature}.x`]) {
			assert.throws(() => verifyGrant(KEY, token, "PUT", NOW), /signature does not match/, token);
		}
	});

	it("creates the signing key once, mode 0600, and reads the same key afterwards", () => {
		const file = join(dir, "keys", "blob-signing.key");
		const first = loadOrCreateSigningKey({ file });
		assert.equal(first.length, 32);
		assert.equal(statSync(file).mode & 0o777, 0o600);
		assert.deepEqual(loadOrCreateSigningKey({ file }), first);
		assert.deepEqual(loadOrCreateSigningKey({ key: "x".repeat(32), file }), Buffer.from("x".repeat(32)));
		writeFileSync(file, "c2hvcnQ=");
		assert.throws(() => loadOrCreateSigningKey({ file }), /shorter than 32 bytes/);
	});

	it("stores bytes and streams, reads, lists and deletes them; a missing blob is undefined", async () => {
		const store = new FileBlobStore(join(dir, "blobs"));
		await store.putBytes("assets/ws/one", Buffer.from("one"));
		const streamed = await store.putStream("assets/ws/two", Readable.from([Buffer.from("tw"), Buffer.from("o")]));
		assert.equal(streamed.bytes, 3);
		assert.equal(readFileSync(join(dir, "blobs", "assets", "ws", "two"), "utf8"), "two");
		await store.putBytes("other/three", Buffer.from("3"));
		assert.deepEqual(await store.list("assets/"), ["assets/ws/one", "assets/ws/two"]);
		assert.deepEqual(await store.stat("assets/ws/one"), { bytes: 3 });
		assert.equal((await digestBlob(store, "assets/ws/two"))?.sha256, streamed.sha256);
		assert.equal(await store.read("assets/ws/none"), undefined);
		assert.equal(await store.stat("assets/ws/none"), undefined);
		await store.delete("assets/ws/one");
		await store.delete("assets/ws/one");
		assert.deepEqual(await store.list("assets/"), ["assets/ws/two"]);
	});

	it("leaves nothing behind when a streamed upload fails midway", async () => {
		const store = new FileBlobStore(join(dir, "failing"));
		const source = new Readable({ read() {} });
		const writing = store.putStream("assets/ws/broken", source);
		source.push(Buffer.from("half"));
		setImmediate(() => source.destroy(new Error("the client went away")));
		await assert.rejects(writing, /the client went away/);
		assert.deepEqual(await store.list(""), []);
	});

	it("signs URLs only with a key, naming the gateway route", async () => {
		await assert.rejects(new FileBlobStore(join(dir, "blobs")).presignGet("assets/ws/two", { expiresSec: 60 }), /has no signing key/);
		const signed = new FileBlobStore(join(dir, "blobs"), { key: KEY, publicUrl: "http://gw:8080" });
		const get = await signed.presignGet("assets/ws/two", { expiresSec: 60 });
		assert.match(get.url, /^http:\/\/gw:8080\/v1\/blobs\/[\w-]+\.[\w-]+$/);
		const put = await signed.presignPut("assets/ws/new", { expiresSec: 60, contentLength: 4, sha256: "a".repeat(64) });
		const grant = verifyGrant(KEY, put.url.split("/v1/blobs/")[1]!, "PUT");
		assert.deepEqual([grant.key, grant.contentLength, grant.sha256], ["assets/ws/new", 4, "a".repeat(64)]);
		assert.ok(grant.nonce && grant.nonce !== verifyGrant(KEY, (await signed.presignPut("assets/ws/new", { expiresSec: 60 })).url.split("/v1/blobs/")[1]!, "PUT").nonce);
		await assert.rejects(signed.presignGet("assets/ws/two", { expiresSec: 0 }), /from 1 to 604800 seconds/);
	});
});
