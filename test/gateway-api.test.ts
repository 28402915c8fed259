import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { PROJECT_ROOT } from "../lib/paths";
import type { Run } from "../services/execution/run";
import { paramsFromQuery, queryShapeOf } from "../services/gateway/api-query";
import type { ErrorBody } from "../services/gateway/http";
import { testSchemas } from "./support/broker";
import { startEdgePlatform, USER_PASSWORD, type EdgePlatform } from "./support/edge-platform";
import { waitFor } from "./support/wait";

const MAX_BODY = 64 * 1024;
const TRAINER = [process.execPath, join(PROJECT_ROOT, "examples", "trainer.js"), "--epochs", "1", "--steps", "2", "--step-ms", "20"];

interface Answer<T = unknown> {
	status: number;
	headers: Headers;
	body: T;
	text: string;
}

interface Ask {
	bearer?: string;
	apiKey?: string;
	json?: unknown;
	headers?: Record<string, string>;
	body?: string | ReadableStream<Uint8Array>;
}

describe("query coercion after the action's params schema", () => {
	it("types numbers, booleans and lists (comma-separated or repeated); leaves unreadable values as text", () => {
		assert.deepEqual(paramsFromQuery("workspaces=a,b&limit=5&fuzzy=false&text=x%20y", queryShapeOf(testSchemas, "catalog.search")), {
			workspaces: ["a", "b"],
			limit: 5,
			fuzzy: false,
			text: "x y",
		});
		assert.deepEqual(paramsFromQuery("workspaces=a&workspaces=b&types=", queryShapeOf(testSchemas, "catalog.search")), { workspaces: ["a", "b"], types: [] });
		// `limit` reaches execution.list through a $ref to common.json.
		assert.deepEqual(paramsFromQuery("limit=7&status=RUNNING", queryShapeOf(testSchemas, "execution.list")), { limit: 7, status: ["RUNNING"] });
		assert.deepEqual(paramsFromQuery("limit=lots&unknown=1", queryShapeOf(testSchemas, "execution.list")), { limit: "lots", unknown: "1" });
	});
});

describe("the HTTP JSON API over a real platform", () => {
	let p: EdgePlatform;
	let editor: string;
	let run: Run;

	async function api<T = unknown>(method: string, path: string, ask: Ask = {}): Promise<Answer<T>> {
		const headers: Record<string, string> = { ...ask.headers };
		if (ask.bearer) headers.authorization = `Bearer ${ask.bearer}`;
		if (ask.apiKey) headers["x-api-key"] = ask.apiKey;
		if (ask.json !== undefined) headers["content-type"] ??= "application/json";
		const res = await fetch(p.url + path, {
			method,
			headers,
			body: ask.body ?? (ask.json === undefined ? undefined : JSON.stringify(ask.json)),
			...(ask.body instanceof ReadableStream ? { duplex: "half" } : {}),
		} as RequestInit);
		const text = await res.text();
		let body: unknown = text;
		if (res.headers.get("content-type")?.startsWith("application/json")) body = JSON.parse(text);
		return { status: res.status, headers: res.headers, body: body as T, text };
	}

	/** Asserts the one error body: its status, code, field, and the trace id of the header. */
	function assertError(a: Answer, status: number, code?: string, field?: string): ErrorBody {
		const e = a.body as ErrorBody;
		assert.equal(a.status, status, `expected ${status}: ${a.text}`);
		assert.equal(e.status, status);
		if (code) assert.equal(e.code, code);
		if (field) assert.equal(e.field, field);
		assert.ok(e.message.length > 0);
		assert.doesNotMatch(a.text, /\bat .+\.(js|ts):\d+/, "no stack trace");
		if (a.headers.get("x-trace-id")) assert.equal(e.trace_id, a.headers.get("x-trace-id"));
		return e;
	}

	before(async () => {
		p = await startEdgePlatform("api", { api: { maxBodyBytes: MAX_BODY } });
		await p.addUser("ann", "editor", ["wsa"]);
		await p.addUser("vic", "viewer", ["wsa"]);
		await p.addUser("bob", "editor", ["wsb"]);
		await p.addUser("lou", "viewer", ["wsb"]);
		const login = await api<{ access_token: string }>("POST", "/v1/auth/login", { json: { username: "ann", password: USER_PASSWORD } });
		assert.equal(login.status, 200, login.text);
		editor = login.body.access_token;
	});
	after(() => p?.close());

	it("submits a run (201), then gets it, lists it and reads its logs", async () => {
		const submitted = await api<Run>("POST", "/v1/runs", { bearer: editor, json: { workspace: "wsa", command: TRAINER, request_id: "api-run-1" } });
		assert.equal(submitted.status, 201, submitted.text);
		run = submitted.body;
		assert.equal(run.workspace, "wsa");
		assert.equal(run.owner, "ann");
		await waitFor("the run to succeed", async () => (await api<Run>("GET", `/v1/runs/${run.id}`, { bearer: editor })).body.status === "SUCCEEDED", 20_000);
		const list = await api<{ items: Run[] }>("GET", "/v1/runs?workspace=wsa&limit=5&status=SUCCEEDED,FAILED", { bearer: editor });
		assert.equal(list.status, 200, list.text);
		assert.deepEqual(
			list.body.items.map((r) => r.id),
			[run.id],
		);
		const logs = await api<{ run_id: string; lines: unknown[] }>("GET", `/v1/runs/${run.id}/logs?limit=100`, { bearer: editor });
		assert.equal(logs.status, 200, logs.text);
		assert.equal(logs.body.run_id, run.id);
		assert.ok(logs.body.lines.length > 0, "the trainer's lines");
	});

	it("echoes a sane x-trace-id in the header and error body, and replaces one that is not", async () => {
		const mine = await api("GET", "/v1/runs/no-such-run", { bearer: editor, headers: { "x-trace-id": "client-trace.42" } });
		assert.equal(mine.headers.get("x-trace-id"), "client-trace.42");
		assertError(mine, 404);
		assert.equal((mine.body as ErrorBody).trace_id, "client-trace.42");
		const insane = await api("GET", `/v1/runs/${run.id}`, { bearer: editor, headers: { "x-trace-id": "bad trace id!" } });
		assert.equal(insane.status, 200);
		assert.match(insane.headers.get("x-trace-id") ?? "", /^[0-9a-f-]{36}$/);
	});

	it("types query values after the schema: limit, lists repeated or comma-separated", async () => {
		const wrong = await api("GET", "/v1/runs?workspace=wsa&limit=lots", { bearer: editor });
		assertError(wrong, 422, undefined, "limit");
		const search = await api<{ items?: unknown[] }>("GET", "/v1/catalog/search?workspaces=wsa&workspaces=wsa&limit=3&fuzzy=false", { bearer: editor });
		assert.equal(search.status, 200, search.text);
		// One of the listed workspaces is someone else's: the list really reached the decision, item by item.
		assertError(await api("GET", "/v1/catalog/search?workspaces=wsa,wsb", { bearer: editor }), 403, "FORBIDDEN");
	});

	it("answers 400 for malformed JSON with the parser's reason, for a non-object body, and for a path contradicted", async () => {
		const bad = await api("POST", "/v1/runs", { bearer: editor, body: '{"workspace": "wsa",', headers: { "content-type": "application/json" } });
		const e = assertError(bad, 400, "INVALID_JSON");
		assert.match(e.message, /not valid JSON: .*(JSON|end|Unexpected)/i);
		assertError(await api("POST", "/v1/runs", { bearer: editor, json: [1, 2] }), 400, "INVALID_BODY");
		assertError(await api("POST", `/v1/runs/${run.id}/cancel`, { bearer: editor, json: { id: "another-run" } }), 400, "PARAM_CONFLICT", "id");
	});

	it("keeps 401 (no or bad credential) apart from 403 (not allowed), and workspaces apart", async () => {
		assertError(await api("GET", `/v1/runs/${run.id}`), 401, "UNAUTHENTICATED");
		assertError(await api("GET", `/v1/runs/${run.id}`, { bearer: "not-a-jwt" }), 401);
		const viewer = (await p.login("vic")).access_token;
		assert.equal((await api("GET", `/v1/runs/${run.id}`, { bearer: viewer })).status, 200, "a viewer reads");
		assertError(await api("POST", "/v1/runs", { bearer: viewer, json: { workspace: "wsa", command: TRAINER } }), 403, "FORBIDDEN");
		const other = (await p.login("bob")).access_token;
		assertError(await api("GET", `/v1/runs/${run.id}`, { bearer: other }), 403, "FORBIDDEN");
		assertError(await api("GET", `/v1/runs/${run.id}/logs`, { bearer: other }), 403, "FORBIDDEN");
		assertError(await api("GET", "/v1/runs?workspace=wsa", { bearer: other }), 403, "FORBIDDEN");
		const own = await api<{ items: Run[] }>("GET", "/v1/runs?workspace=wsb", { bearer: other });
		assert.deepEqual(own.body.items, [], "workspace B sees none of A's runs");
	});

	it("answers 404 for an unknown route and a missing run, 405 with allow for a wrong method", async () => {
		assertError(await api("GET", "/v1/nothing-here", { bearer: editor }), 404);
		assertError(await api("GET", "/v1/runs/no-such-run", { bearer: editor }), 404);
		const wrong = await api("DELETE", "/v1/runs", { bearer: editor });
		assertError(wrong, 405, "METHOD_NOT_ALLOWED");
		assert.equal(wrong.headers.get("allow"), "GET, POST");
		assert.equal(wrong.headers.get("x-trace-id"), (wrong.body as ErrorBody).trace_id);
		assert.equal((await api("GET", `/v1/runs/${run.id}/cancel`, { bearer: editor })).headers.get("allow"), "POST");
	});

	it("prefers static segments to params: /v1/deadletters/stats is not deadletters.get", async () => {
		const stats = await api("GET", "/v1/deadletters/stats", { bearer: p.admin.access_token });
		assert.equal(stats.status, 200, stats.text);
		assertError(await api("GET", "/v1/deadletters/999999", { bearer: p.admin.access_token }), 404);
	});

	it("answers 409 for a request id reused with a different request, 422 naming the field", async () => {
		assertError(await api("POST", "/v1/runs", { bearer: editor, json: { workspace: "wsa", command: [...TRAINER, "--seed", "2"], request_id: "api-run-1" } }), 409, "REQUEST_ID_REUSED");
		assertError(await api("POST", "/v1/runs", { bearer: editor, json: { workspace: "wsa", command: TRAINER, max_retries: 99 } }), 422, undefined, "max_retries");
		assertError(await api("POST", "/v1/runs", { bearer: editor, json: { workspace: "wsa" } }), 422, undefined, "command");
	});

	it("refuses bodies over the limit (413, declared or chunked) and bodies that are not JSON (415)", async () => {
		const big = JSON.stringify({ workspace: "wsa", command: ["x".repeat(MAX_BODY)] });
		const declared = assertError(await api("POST", "/v1/runs", { bearer: editor, body: big, headers: { "content-type": "application/json" } }), 413, "TOO_LARGE");
		assert.match(declared.message, new RegExp(`has ${Buffer.byteLength(big)} bytes`), "refused from Content-Length, before reading");
		const piece = new TextEncoder().encode(" ".repeat(16 * 1024));
		let sent = 0;
		const chunked = new ReadableStream<Uint8Array>({
			pull(c) {
				// Far more than the limit: the server must answer without waiting for the end.
				if ((sent += piece.length) > 64 * MAX_BODY) return c.close();
				c.enqueue(piece);
			},
		});
		const cut = await api("POST", "/v1/runs", { bearer: editor, body: chunked, headers: { "content-type": "application/json" } });
		assert.match(assertError(cut, 413, "TOO_LARGE").message, /exceeds the 65536 bytes/);
		assert.ok(sent < 64 * MAX_BODY, "cut off before the end");
		assertError(await api("POST", "/v1/runs", { bearer: editor, body: "workspace=wsa", headers: { "content-type": "text/plain" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
		// A small chunked JSON body is read whole.
		const small = new ReadableStream<Uint8Array>({
			start(c) {
				c.enqueue(new TextEncoder().encode('{"name":'));
				c.enqueue(new TextEncoder().encode('"chunked"}'));
				c.close();
			},
		});
		assert.equal((await api("POST", "/v1/me/api-keys", { bearer: editor, body: small, headers: { "content-type": "application/json" } })).status, 201);
	});

	it("survives a client that goes away mid-body, and serves the next request", async () => {
		const aborter = new AbortController();
		const endless = new ReadableStream<Uint8Array>({
			start(c) {
				c.enqueue(new TextEncoder().encode('{"workspace":'));
			},
		});
		const pending = fetch(`${p.url}/v1/runs`, {
			method: "POST",
			headers: { authorization: `Bearer ${editor}`, "content-type": "application/json" },
			body: endless,
			duplex: "half",
			signal: aborter.signal,
		} as RequestInit);
		setTimeout(() => aborter.abort(), 100);
		await assert.rejects(pending);
		assert.equal((await api("GET", `/v1/runs/${run.id}`, { bearer: editor })).status, 200);
	});

	it("authenticates with an API key (X-Api-Key) until it is revoked", async () => {
		const created = await api<{ key: string; record: { id: string } }>("POST", "/v1/me/api-keys", { bearer: editor, json: { name: "ci" } });
		assert.equal(created.status, 201, created.text);
		const { key, record } = created.body;
		assert.equal((await api("GET", `/v1/runs/${run.id}`, { apiKey: key })).status, 200);
		assert.equal((await api("GET", `/v1/runs/${run.id}`, { headers: { authorization: `ApiKey ${key}` } })).status, 200);
		assert.equal((await api("DELETE", `/v1/me/api-keys/${record.id}`, { bearer: editor })).status, 200);
		assertError(await api("GET", `/v1/runs/${run.id}`, { apiKey: key }), 401);
	});

	it("serves the audit export as JSON lines", async () => {
		const lines = await api("GET", "/v1/admin/audit/export?kind=login&limit=5", { bearer: p.admin.access_token });
		assert.equal(lines.status, 200, lines.text);
		assert.equal(lines.headers.get("content-type"), "application/x-ndjson");
		const records = lines.text.trim().split("\n").map((l) => JSON.parse(l) as { kind: string });
		assert.ok(records.length > 0 && records.every((r) => r.kind === "login"));
	});

	// Last: the lock-out counts per source too, and every HTTP login here comes from 127.0.0.1.
	it("locks an account out after repeated failed logins (423)", async () => {
		const attempt = () => api("POST", "/v1/auth/login", { json: { username: "lou", password: "wrong-password-guess" } });
		// The platform's throttle: 5 failures lock (services/authz/identity/throttle.ts DEFAULT_THROTTLE).
		for (let i = 0; i < 5; i++) assertError(await attempt(), 401, "UNAUTHENTICATED");
		assertError(await attempt(), 423, "LOCKED");
		assertError(await api("POST", "/v1/auth/login", { json: { username: "lou", password: USER_PASSWORD } }), 423, "LOCKED");
	});
});
