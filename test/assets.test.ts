import type { JetStreamManager } from "@nats-io/jetstream";
import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { connect as connectTcp } from "node:net";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { AssetRejected, AssetStored } from "../events/catalog";
import type { EventDefinition } from "../events/definition";
import { HEADERS } from "../events/headers";
import { readAfter } from "../events/stream-reader";
import { STREAMS } from "../events/streams";
import { FileBlobStore } from "../lib/blob";
import { freePort } from "../lib/nats-server";
import { signGrant, type BlobGrant } from "../lib/signed-url";
import type { Asset } from "../services/assets/asset";
import type { AssetPage } from "../services/assets/asset-store";
import { assetsService } from "../services/assets/assets.service";
import { gatewayService } from "../services/gateway/gateway.service";
import { startBroker, testConfig } from "./support/broker";
import { type TestNats } from "./support/nats";
import { rejectsWith, type ClientError } from "./support/errors";
import { openServiceSuite, type ServiceSuite } from "./support/suite";
import { sleep, waitFor } from "./support/wait";

const WS = "ws-assets";
const OTHER_WS = "ws-elsewhere";

type Presigned = { uid: string; url: string; method: string; headers: Record<string, string>; expires_at: string };

let suite: ServiceSuite;
let nats: TestNats;
let broker: ServiceBroker;
let jsm: JetStreamManager;
let dataDir: string;
let blobs: FileBlobStore;
let gatewayPort: number;

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function requestUpload(bytes: Uint8Array, extra: Record<string, unknown> = {}): Promise<Presigned> {
	return broker.call<Presigned, object>("assets.requestUpload", { workspace: WS, name: "cats.zip", size: bytes.length, sha256: sha256(bytes), ...extra });
}

const complete = (uid: string, workspace = WS) => broker.call<Asset, object>("assets.completeUpload", { workspace, uid });
const getAsset = (uid: string, workspace = WS) => broker.call<Asset, object>("assets.get", { workspace, uid });

async function put(url: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; body: { message?: string } }> {
	const res = await fetch(url, { method: "PUT", headers, body });
	return { status: res.status, body: (await res.json()) as { message?: string } };
}

/** The events of one asset as stored in the EVENTS stream, with their de-duplication ids. */
async function eventsOf(def: EventDefinition<{ uid: string }>, uid: string): Promise<Array<{ msgId: string | undefined; event: Record<string, unknown> }>> {
	const { messages } = await readAfter(jsm, STREAMS.events.name, def.subject, 0, 10_000);
	return messages
		.map((m) => ({ msgId: m.header?.get(HEADERS.msgId), event: m.json<{ uid: string } & Record<string, unknown>>() }))
		.filter(({ event }) => event.uid === uid);
}

/** A token with its signed payload changed and the old signature kept: what a forger can do without the key. */
function tamper(url: string, change: (grant: BlobGrant) => BlobGrant): string {
	const [base, token] = url.split("/v1/blobs/") as [string, string];
	const [payload, signature] = token.split(".") as [string, string];
	const grant = change(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as BlobGrant);
	return `${base}/v1/blobs/${Buffer.from(JSON.stringify(grant)).toString("base64url")}.${signature}`;
}

const partials = () => readdirSync(blobs.root, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".partial"));

describe("assets: presigned uploads and downloads through the gateway's embedded store", () => {
	before(async () => {
		suite = await openServiceSuite("assets");
		({ nats, dataDir, jsm } = suite);
		gatewayPort = await freePort();
		const env = { DATA_DIR: dataDir, GATEWAY_PORT: String(gatewayPort), PUBLIC_URL: `http://127.0.0.1:${gatewayPort}` };
		const config = testConfig(env);
		const { storageUrl, signingKeyFile } = config.assets;
		blobs = new FileBlobStore(fileURLToPath(storageUrl));
		broker = await startBroker(
			nats.endpoint,
			"assets-1",
			[gatewayService({ host: "127.0.0.1", port: gatewayPort, blobs: { storageUrl, signingKeyFile, replicas: 1 } }), assetsService(config)],
			env,
		);
	});

	after(async () => {
		await broker?.stop();
		await suite?.close();
	});

	it("request → PUT → complete: the asset goes from PENDING to STORED and is announced once", async () => {
		const bytes = Buffer.from("a small dataset archive ".repeat(4_000));
		const upload = await requestUpload(bytes, { content_type: "application/zip" });
		assert.equal(upload.method, "PUT");
		assert.ok(upload.url.startsWith(`http://127.0.0.1:${gatewayPort}/v1/blobs/`), upload.url);
		assert.deepEqual(upload.headers, { "content-length": String(bytes.length) });
		assert.ok(Date.parse(upload.expires_at) > Date.now());

		const pending = await getAsset(upload.uid);
		assert.equal(pending.status, "PENDING");
		assert.equal(await blobs.stat(pending.blob_key), undefined, "nothing is stored before the client uploads");
		await assert.rejects(complete(upload.uid), rejectsWith(409, "UPLOAD_MISSING", (e) => assert.match(e.message, /PUT the file/)));

		const stored = await put(upload.url, bytes, upload.headers);
		assert.equal(stored.status, 200, JSON.stringify(stored.body));
		const done = await complete(upload.uid);
		assert.equal(done.status, "STORED");
		assert.equal((await complete(upload.uid)).status, "STORED", "completing again gives the same outcome");

		const events = await eventsOf(AssetStored, upload.uid);
		assert.equal(events.length, 1);
		assert.equal(events[0]!.msgId, `${upload.uid}:stored`);
		assert.deepEqual([events[0]!.event.size, events[0]!.event.sha256, events[0]!.event.content_type], [bytes.length, sha256(bytes), "application/zip"]);
		assert.equal(statSync(testConfig({ DATA_DIR: dataDir }).assets.signingKeyFile).mode & 0o777, 0o600, "the generated signing key is private");
	});

	it("bytes that do not match the announced sha256 are REJECTED with the reason, deleted and announced", async () => {
		const announced = Buffer.from("what the client said it would send");
		const sent = Buffer.from(announced);
		sent[0] ^= 1; // same size, other bytes: only the checksum can tell
		const upload = await requestUpload(announced);
		assert.equal((await put(upload.url, sent, upload.headers)).status, 200);
		const asset = await complete(upload.uid);
		assert.equal(asset.status, "REJECTED");
		assert.match(asset.reason!, /^sha256 mismatch: the uploaded bytes hash to [0-9a-f]{64}, [0-9a-f]{64} was announced$/);
		assert.equal(await blobs.stat(asset.blob_key), undefined, "the wrong bytes are gone");
		const events = await eventsOf(AssetRejected, upload.uid);
		assert.deepEqual(
			events.map((e) => [e.msgId, e.event.reason]),
			[[`${upload.uid}:rejected`, asset.reason]],
		);
		await assert.rejects(broker.call("assets.requestDownload", { workspace: WS, uid: upload.uid }), rejectsWith(409, "NOT_STORED"));
	});

	it("refuses expired upload and download links with 403", async () => {
		const bytes = Buffer.from("late");
		const stored = await requestUpload(bytes);
		await put(stored.url, bytes, stored.headers);
		await complete(stored.uid);
		const download = await broker.call<Presigned, object>("assets.requestDownload", { workspace: WS, uid: stored.uid, expires_in_s: 1 });
		const upload = await requestUpload(bytes, { expires_in_s: 1 });
		// Expiry has whole seconds: after 1.1 s a 1 s link is past it whatever the rounding.
		await sleep(1_100);
		const late = await put(upload.url, bytes, upload.headers);
		assert.equal(late.status, 403);
		assert.match(late.body.message!, /^this link expired at /);
		const lateGet = await fetch(download.url);
		assert.equal(lateGet.status, 403);
		assert.match(((await lateGet.json()) as { message: string }).message, /^this link expired at /);
	});

	it("refuses forged links: altered key, expiry or signature, a foreign key, or a PUT link used to GET", async () => {
		const bytes = Buffer.from("forgery target");
		const upload = await requestUpload(bytes);
		const forged = [
			tamper(upload.url, (g) => ({ ...g, key: `assets/${OTHER_WS}/planted` })),
			tamper(upload.url, (g) => ({ ...g, expiresAt: g.expiresAt + 86_400 })),
			tamper(upload.url, (g) => ({ ...g, contentLength: 10 ** 9 })),
			upload.url.slice(0, -2) + (upload.url.endsWith("AA") ? "BB" : "AA"),
			`http://127.0.0.1:${gatewayPort}/v1/blobs/${signGrant(Buffer.alloc(32, 1), { method: "PUT", key: "assets/x/y", expiresAt: 4e9 })}`,
			`http://127.0.0.1:${gatewayPort}/v1/blobs/not-a-token`,
		];
		for (const url of forged) {
			const res = await put(url, bytes, upload.headers);
			assert.equal(res.status, 403, url);
			assert.equal(res.body.message, "this link's signature does not match: it was altered or not issued by this platform");
		}
		const asGet = await fetch(upload.url);
		assert.equal(asGet.status, 403);
		assert.equal(((await asGet.json()) as { message: string }).message, "this link is for PUT, not GET");
		assert.deepEqual(await blobs.list("assets/"), (await blobs.list("assets/")).filter((k) => !k.includes("planted")));
		assert.equal((await put(upload.url, bytes, upload.headers)).status, 200, "the genuine link still works");
	});

	it("refuses a replayed upload: the second PUT with the same link changes nothing", async () => {
		const bytes = Buffer.from("first and only upload");
		const upload = await requestUpload(bytes);
		assert.equal((await put(upload.url, bytes, upload.headers)).status, 200);
		const replay = await put(upload.url, Buffer.from("REPLAYED OTHER UPLOAD"), upload.headers);
		assert.equal(replay.status, 403);
		assert.equal(replay.body.message, "this upload link was already used; ask for a new one");
		const asset = await complete(upload.uid);
		assert.equal(asset.status, "STORED", "the first upload's bytes are what is stored");
	});

	it("hands download links to the owner's workspace only: another workspace gets 404, like a uid that does not exist", async () => {
		const bytes = Buffer.from("only for ws-assets");
		const upload = await requestUpload(bytes);
		await put(upload.url, bytes, upload.headers);
		await complete(upload.uid);
		const download = await broker.call<Presigned, object>("assets.requestDownload", { workspace: WS, uid: upload.uid });
		assert.equal(download.method, "GET");
		const res = await fetch(download.url);
		assert.equal(res.status, 200);
		assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);

		const elsewhere = await broker.call("assets.requestDownload", { workspace: OTHER_WS, uid: upload.uid }).catch((err: ClientError) => err);
		const missing = await broker.call("assets.requestDownload", { workspace: OTHER_WS, uid: "a000000000doesnotexist" }).catch((err: ClientError) => err);
		for (const err of [elsewhere, missing] as ClientError[]) assert.equal(err.code, 404);
		assert.equal((elsewhere as ClientError).message, `no asset ${upload.uid} in workspace ${OTHER_WS}`);
		await assert.rejects(getAsset(upload.uid, OTHER_WS), rejectsWith(404, "NOT_FOUND"));
		await assert.rejects(complete(upload.uid, OTHER_WS), rejectsWith(404, "NOT_FOUND"));
	});

	it("refuses a body larger than the signed length at once, without reading or writing it", async () => {
		const bytes = Buffer.alloc(1024, 3);
		const upload = await requestUpload(bytes);
		const path = new URL(upload.url).pathname;
		const declared = 50 * 1024 * 1024;
		const socket = connectTcp(gatewayPort, "127.0.0.1");
		let response = "";
		socket.on("data", (d) => (response += d.toString()));
		const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
		socket.on("error", () => undefined);
		socket.write(`PUT ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${declared}\r\n\r\n`);
		socket.write(Buffer.alloc(64 * 1024, 3));
		const startedAt = Date.now();
		await closed;
		assert.ok(Date.now() - startedAt < 5_000);
		assert.match(response, /^HTTP\/1\.1 413 /);
		assert.match(response, /the body has 52428800 bytes; this link allows at most 1024/);
		const asset = await getAsset(upload.uid);
		assert.equal(await blobs.stat(asset.blob_key), undefined);
		assert.deepEqual(partials(), []);
		assert.equal((await put(upload.url, bytes, upload.headers)).status, 200, "the link was not used up by the refused body");
	});

	it("a client that goes away mid-upload leaves no file and no temp file, and the gateway keeps serving", async () => {
		const bytes = Buffer.alloc(256 * 1024, 5);
		const upload = await requestUpload(bytes);
		const socket = connectTcp(gatewayPort, "127.0.0.1");
		socket.on("error", () => undefined);
		await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
		socket.write(`PUT ${new URL(upload.url).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${bytes.length}\r\n\r\n`);
		socket.write(bytes.subarray(0, 100 * 1024));
		await sleep(100);
		socket.destroy();
		await waitFor("the partial upload to be removed", () => partials().length === 0, 5_000);
		assert.equal(await blobs.stat((await getAsset(upload.uid)).blob_key), undefined);
		assert.equal((await fetch(`http://127.0.0.1:${gatewayPort}/healthz`)).status, 200);
		const retry = await put(upload.url, bytes, upload.headers);
		assert.equal(retry.status, 403, "the link was used by the broken upload: the client asks for a new one");
	});

	it("keeps the gateway's blob settings (which may hold the signing key) out of what other nodes see", () => {
		// withSettings is missing from Moleculer's typings; through a variable the option passes the type check.
		const options = { onlyLocal: true, withSettings: true };
		const services = broker.registry.getServiceList(options) as unknown as Array<{ name: string; settings: Record<string, unknown> }>;
		const gateway = services.find((s) => s.name === "gateway")!;
		assert.equal(gateway.settings.port, gatewayPort);
		assert.equal("blobs" in gateway.settings, false);
	});

	it("lists a workspace's assets page by page, oldest first", async () => {
		const ws = "ws-listing";
		const uids: string[] = [];
		for (const name of ["a.bin", "b.bin", "c.bin"]) {
			uids.push((await requestUpload(Buffer.from(name), { workspace: ws, name })).uid);
		}
		const first = await broker.call<AssetPage, object>("assets.list", { workspace: ws, limit: 2 });
		assert.deepEqual(first.items.map((a) => a.uid), uids.slice(0, 2));
		assert.ok(first.next);
		const second = await broker.call<AssetPage, object>("assets.list", { workspace: ws, limit: 2, cursor: first.next });
		assert.deepEqual(second.items.map((a) => a.uid), uids.slice(2));
		assert.equal(second.next, undefined);
		assert.ok(second.items.every((a) => !("published" in a)));
		const other = await broker.call<AssetPage, object>("assets.list", { workspace: OTHER_WS });
		assert.deepEqual(other.items, []);
	});
});
