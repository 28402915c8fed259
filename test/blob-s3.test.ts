// The AWS SDK warns once per process that it will need Node 22 from 2027; tests keep their output clean, production logs keep the warning.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { digestBlob } from "../lib/blob";
import { S3BlobStore } from "../lib/blob-s3";

// s3rver has no type declarations; this is the part the test uses.
interface S3rverServer {
	run(): Promise<AddressInfo>;
	close(): Promise<void>;
}
const S3rver = require("s3rver") as new (opts: Record<string, unknown>) => S3rverServer;

const BUCKET = "savassan-assets";
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

let dir: string;
let server: S3rverServer;
let store: S3BlobStore;

describe("S3 blob store against s3rver", () => {
	before(async () => {
		dir = mkdtempSync(join(tmpdir(), "savassan-s3-"));
		server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: join(dir, "s3"), configureBuckets: [{ name: BUCKET }] });
		const { port } = await server.run();
		store = new S3BlobStore({
			endpoint: `http://127.0.0.1:${port}`,
			bucket: BUCKET,
			region: "us-east-1",
			credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
			forcePathStyle: true,
		});
	});

	after(async () => {
		store?.close();
		await server?.close();
		rmSync(dir, { recursive: true, force: true });
	});

	it("puts bytes and files, stats, reads back and lists by prefix", async () => {
		const bytes = Buffer.from("hello, object store");
		const put = await store.putBytes("assets/ws-a/one", bytes);
		assert.deepEqual(put, { uri: `s3://${BUCKET}/assets/ws-a/one`, bytes: bytes.length, sha256: sha256(bytes) });
		const file = join(dir, "two.bin");
		writeFileSync(file, Buffer.alloc(70_000, 7));
		const fromFile = await store.putFile("assets/ws-a/two", file);
		assert.equal(fromFile.bytes, 70_000);

		assert.deepEqual(await store.stat("assets/ws-a/one"), { bytes: bytes.length });
		assert.equal(await store.stat("assets/ws-a/none"), undefined);
		assert.deepEqual(await digestBlob(store, "assets/ws-a/two"), { bytes: 70_000, sha256: sha256(Buffer.alloc(70_000, 7)) });
		assert.equal(await store.read("assets/ws-a/none"), undefined);
		await store.putBytes("assets/ws-b/three", bytes);
		assert.deepEqual(await store.list("assets/ws-a/"), ["assets/ws-a/one", "assets/ws-a/two"]);

		await store.delete("assets/ws-a/one");
		assert.equal(await store.stat("assets/ws-a/one"), undefined);
	});

	it("hands out a presigned PUT a client uploads with, then a presigned GET that returns the same bytes", async () => {
		const bytes = Buffer.from("uploaded by the client, not by the platform");
		const put = await store.presignPut("assets/ws-a/presigned", { expiresSec: 60, contentLength: bytes.length, sha256: sha256(bytes) });
		assert.equal(put.method, "PUT");
		assert.match(put.url, /X-Amz-Signature=/);
		const uploaded = await fetch(put.url, { method: "PUT", headers: put.headers, body: bytes });
		assert.equal(uploaded.status, 200, await uploaded.text());
		assert.deepEqual(await digestBlob(store, "assets/ws-a/presigned"), { bytes: bytes.length, sha256: sha256(bytes) });

		const get = await store.presignGet("assets/ws-a/presigned", { expiresSec: 60 });
		const downloaded = await fetch(get.url);
		assert.equal(downloaded.status, 200);
		assert.deepEqual(Buffer.from(await downloaded.arrayBuffer()), bytes);
	});

	it("a presigned URL is refused once it has expired", async () => {
		await store.putBytes("assets/ws-a/short-lived", Buffer.from("soon gone"));
		const get = await store.presignGet("assets/ws-a/short-lived", { expiresSec: 1 });
		const put = await store.presignPut("assets/ws-a/late", { expiresSec: 1, contentLength: 4 });
		assert.equal((await fetch(get.url)).status, 200, "valid before its expiry");
		// X-Amz-Date has whole seconds: 2.1 s is past any 1 s lifetime.
		await new Promise((r) => setTimeout(r, 2_100));
		const late = await fetch(get.url);
		assert.equal(late.status, 403);
		assert.match(await late.text(), /expired/);
		const latePut = await fetch(put.url, { method: "PUT", headers: put.headers, body: "late" });
		assert.equal(latePut.status, 403);
		await latePut.text();
		assert.equal(await store.stat("assets/ws-a/late"), undefined);
	});

	it("refuses lifetimes S3 would not sign", async () => {
		await assert.rejects(store.presignGet("assets/ws-a/x", { expiresSec: 8 * 86_400 }), /from 1 to 604800 seconds/);
		await assert.rejects(store.presignPut("../escape", { expiresSec: 60 }), /not a relative path/);
	});
});
