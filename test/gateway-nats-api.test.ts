import { ServiceError, ServiceErrorCodeHeader } from "@nats-io/services";
import { connect, headers as natsHeaders, type Msg, type NatsConnection } from "@nats-io/transport-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { STREAMS } from "../events/streams";
import { subjects } from "../events/subjects";
import { busOf } from "../lib/moleculer/bus.middleware";
import { credsAuthenticator } from "../lib/nats-auth";
import type { Run } from "../services/execution/run";
import type { ErrorBody } from "../services/gateway/http";
import { NATS_SERVICE_NAME, natsEndpoints } from "../services/gateway/nats-api";
import { startEdgePlatform, type EdgePlatform } from "./support/edge-platform";
import { waitFor } from "./support/wait";

/** A plain NATS client of the API, logged in with client credentials minted by the platform's authority. */
async function apiClient(p: EdgePlatform, name: string): Promise<NatsConnection> {
	return connect({
		servers: [p.nats.url],
		authenticator: credsAuthenticator(await p.nats.authority!.clientCreds(name)),
		inboxPrefix: subjects.inboxOfClient(name),
	});
}

const encoder = new TextEncoder();

describe("the NATS services API (savassan.v1.*) over a real operator-mode server", () => {
	let p: EdgePlatform;
	let client: NatsConnection;
	let run: Run;
	let annToken: string;

	async function ask(endpoint: readonly string[], body: string | object, h: Record<string, string> = {}): Promise<Msg> {
		const hdrs = natsHeaders();
		for (const [k, v] of Object.entries(h)) hdrs.set(k, v);
		const data = typeof body === "string" ? encoder.encode(body) : JSON.stringify(body);
		return client.request(subjects.api(endpoint), data, { headers: hdrs, timeout: 5_000 });
	}

	/** The service error of a reply: its code header is the HTTP status and its data the one error body. */
	function assertError(reply: Msg, status: number, code?: string, field?: string): ErrorBody {
		assert.ok(ServiceError.isServiceError(reply as never), `expected an error, got ${reply.string()}`);
		assert.equal(reply.headers?.get(ServiceErrorCodeHeader), String(status));
		const body = reply.json<ErrorBody>();
		assert.equal(body.status, status);
		if (code) assert.equal(body.code, code);
		if (field) assert.equal(body.field, field);
		assert.ok(body.message.length > 0 && body.trace_id);
		assert.doesNotMatch(reply.string(), /\bat .+\.(js|ts):\d+/, "no stack trace");
		return body;
	}

	before(async () => {
		p = await startEdgePlatform("natsapi", { natsApi: true });
		await p.addUser("ann", "viewer", ["wsa"]);
		await p.addUser("bob", "viewer", ["wsb"]);
		annToken = (await p.login("ann")).access_token;
		run = await p.broker.call<Run, object>("execution.submit", { workspace: "wsa", command: [process.execPath, "-e", "0"] });
		client = await apiClient(p, "tools");
	});
	after(async () => {
		await client?.close();
		await p?.close();
	});

	it("answers savassan.v1.runs.get for a bearer token, with the run", async () => {
		const reply = await ask(["runs", "get"], { id: run.id }, { Authorization: `Bearer ${annToken}`, "Trace-Id": "nats-trace.1" });
		assert.equal(ServiceError.isServiceError(reply as never), false, reply.string());
		const got = reply.json<Run>();
		assert.equal(got.id, run.id);
		assert.equal(got.workspace, "wsa");
	});

	it("keeps 401 (no credential) apart from 403 (another workspace)", async () => {
		assertError(await ask(["runs", "get"], { id: run.id }), 401, "UNAUTHENTICATED");
		const bob = (await p.login("bob")).access_token;
		assertError(await ask(["runs", "get"], { id: run.id }, { authorization: `bearer ${bob}` }), 403, "FORBIDDEN");
	});

	it("answers 400 for malformed JSON or a non-object body, 422 naming a missing field, with the caller's trace id", async () => {
		const auth = { Authorization: `Bearer ${annToken}` };
		const bad = assertError(await ask(["runs", "get"], '{"id":', { ...auth, "Trace-Id": "nats-trace.2" }), 400, "INVALID_JSON");
		assert.equal(bad.trace_id, "nats-trace.2");
		assertError(await ask(["runs", "get"], "[1]", auth), 400, "INVALID_BODY");
		assertError(await ask(["runs", "get"], "", auth), 422, undefined, "id");
		assertError(await ask(["runs", "list"], { workspace: "wsa", limit: "lots" }, auth), 422, undefined, "limit");
	});

	it("is discoverable: $SRV.PING and INFO list the endpoints, STATS counts requests", async () => {
		const ping = (await client.request(`$SRV.PING.${NATS_SERVICE_NAME}`, "", { timeout: 5_000 })).json<{ name: string; version: string }>();
		assert.equal(ping.name, NATS_SERVICE_NAME);
		assert.match(ping.version, /^\d+\.\d+\.\d+/);
		const info = (await client.request(`$SRV.INFO.${NATS_SERVICE_NAME}`, "", { timeout: 5_000 })).json<{ endpoints: { subject: string }[] }>();
		assert.deepEqual(
			info.endpoints.map((e) => e.subject).sort(),
			natsEndpoints()
				.map((e) => e.subject)
				.sort(),
		);
		assert.ok(info.endpoints.some((e) => e.subject === subjects.api(["runs", "get"])));
		await ask(["runs", "get"], { id: run.id }, { Authorization: `Bearer ${annToken}` });
		const stats = (await client.request(`$SRV.STATS.${NATS_SERVICE_NAME}`, "", { timeout: 5_000 })).json<{
			endpoints: { subject: string; num_requests: number }[];
		}>();
		const runsGet = stats.endpoints.find((e) => e.subject === subjects.api(["runs", "get"]));
		assert.ok(runsGet && runsGet.num_requests >= 7, `runs.get counted ${runsGet?.num_requests}`);
	});

	it("client credentials reach the API only: no publishing elsewhere, no other client's inbox", async () => {
		const errors: string[] = [];
		void (async () => {
			for await (const s of client.status()) if (s.type === "error") errors.push(String((s as { error?: Error }).error?.message ?? s.type));
		})();
		const evt = subjects.domain("forged", "thing", "happened");
		const tlm = subjects.telemetry("wsa", "run_forged", "heartbeat");
		client.publish(evt, JSON.stringify({ forged: true }));
		client.publish(tlm, JSON.stringify({ forged: true }));
		await waitFor("two permission violations", () => errors.filter((e) => /permission/i.test(e)).length >= 2, 5_000);
		assert.equal(await storedOn(STREAMS.events.name, evt), 0, "nothing forged reached EVENTS");
		assert.equal(await storedOn(STREAMS.telemetry.name, tlm), 0, "nothing forged reached TELEMETRY");

		const snooper = await apiClient(p, "snooper");
		const snoopErrors: string[] = [];
		void (async () => {
			for await (const s of snooper.status()) if (s.type === "error") snoopErrors.push(String((s as { error?: Error }).error?.message ?? s.type));
		})();
		try {
			const sub = snooper.subscribe(`${subjects.inboxOfClient("tools")}.>`);
			await waitFor("a subscribe permission violation", () => snoopErrors.some((e) => /permission/i.test(e) && /subscri/i.test(e)), 5_000);
			sub.unsubscribe();
		} finally {
			await snooper.close();
		}
	});

	async function storedOn(stream: string, subject: string): Promise<number> {
		const info = await busOf(p.broker).jsm.streams.info(stream, { subjects_filter: subject });
		return info.state.subjects?.[subject] ?? 0;
	}
});
