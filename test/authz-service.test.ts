import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { HEADERS } from "../events/headers";
import { lastOnSubject } from "../events/stream-reader";
import { STREAMS } from "../events/streams";
import { subjects } from "../events/subjects";
import { busOf } from "../lib/moleculer/bus.middleware";
import type { EdgeMeta } from "../lib/moleculer/authz.middleware";
import type { AuditRecord } from "../services/authz/audit/audit";
import { authzService, BOOTSTRAP_ADMIN } from "../services/authz/authz.service";
import { escapeKey } from "../services/authz/kv-store";
import type { TokenPair } from "../services/authz/identity/tokens";
import type { AnyServiceSchema } from "../services/index";
import { assetsService } from "../services/assets/assets.service";
import { curationService } from "../services/curation/curation.service";
import { deadLettersService } from "../services/deadletters/deadletters.service";
import { executionService } from "../services/execution/execution.service";
import type { Run } from "../services/execution/run";
import type { IntentParse } from "../services/intent/intent-store";
import { intentService } from "../services/intent/intent.service";
import { telemetryService } from "../services/telemetry/telemetry.service";
import { startBroker, testConfig } from "./support/broker";
import { rejectsWith } from "./support/errors";
import { startTestNats, type TestNats } from "./support/nats";
import { StubIdp } from "./support/stub-idp";
import { waitFor } from "./support/wait";

const WS_A = "ws-a";
const WS_B = "ws-b";
const ADMIN_PASSWORD = "admin-password-for-tests";
const PASSWORD = "a-long-enough-password";
const BRIEF = "Fine-tune resnet50 on ds-42 to tell apart cats and dogs, 5 epochs";


let nats: TestNats;
let authzNode: ServiceBroker;
let targetNode: ServiceBroker;
/** The execution service's data; it has no NATS authority, so runs fail at start (and stay put for the tests). */
let dataDir: string;

/** A broker wired like the platform's (moleculer.config.ts registers AuthzMiddleware inside validation). */
const startNode = (nodeId: string, services: AnyServiceSchema[], env: Record<string, string> = {}) => startBroker(nats.endpoint, nodeId, services, env);

const idp = new StubIdp();
const REDIRECT_URL = "http://127.0.0.1:8080/auth/callback";
const startAuthz = () =>
	startNode("authz-1", [
		authzService({
			adminPassword: ADMIN_PASSWORD,
			streamReplicas: 1,
			throttle: { maxFailures: 3, windowMs: 60_000, lockMs: 60_000 },
			oidc: { issuer: idp.issuer, clientId: idp.clientId, redirectUrl: REDIRECT_URL },
		}),
	]);

/** A call as an edge forwards it from outside: the caller's credential in meta, marked as coming from an edge. */
function edge<T>(action: string, params: object, auth?: EdgeMeta["auth"]): Promise<T> {
	return targetNode.call<T, object>(action, params, { meta: { edge: true, ...(auth ? { auth } : {}) } });
}

const bearer = (t: TokenPair) => ({ bearer: t.access_token });
const login = (username: string, password = PASSWORD) => edge<TokenPair>("authz.login", { username, password });

async function audit(query: Record<string, unknown>, as: TokenPair): Promise<AuditRecord[]> {
	return (await edge<{ items: AuditRecord[] }>("authz.audit.query", { limit: 1000, ...query }, bearer(as))).items;
}

let admin: TokenPair;
let viewer: TokenPair;
let editor: TokenPair;
let otherEditor: TokenPair;
let parseInA: IntentParse;
let parseInB: IntentParse;

describe("authz service and middleware: edge calls are authenticated, decided and audited", () => {
	before(async () => {
		nats = await startTestNats();
		await idp.start();
		authzNode = await startAuthz();
		dataDir = mkdtempSync(join(tmpdir(), "savassan-authz-"));
		const env = { DATA_DIR: dataDir, NATS_AUTHORITY: join(dataDir, "no-authority.json") };
		const config = testConfig(env);
		targetNode = await startNode(
			"target-1",
			[intentService(config), executionService(config, { nats: nats.endpoint }), telemetryService(), deadLettersService(), curationService(config), assetsService(config)],
			env,
		);
		admin = await login(BOOTSTRAP_ADMIN, ADMIN_PASSWORD);
		const as = bearer(admin);
		for (const ws of [WS_A, WS_B]) await edge("authz.workspaces.put", { id: ws, name: ws }, as);
		for (const [user, role] of [["vic", "viewer"], ["eda", "editor"], ["edb", "editor"]] as const) {
			await edge("authz.users.put", { id: user, name: user, password: PASSWORD }, as);
			await edge("authz.bindings.add", { subject: { kind: "user", id: user }, role, scope: WS_A }, as);
		}
		viewer = await login("vic");
		editor = await login("eda");
		otherEditor = await login("edb");
		// Internal calls (no edge mark) are trusted: the fixtures are made that way in both workspaces.
		parseInA = await targetNode.call<IntentParse, object>("intent.parse", { workspace: WS_A, text: BRIEF });
		parseInB = await targetNode.call<IntentParse, object>("intent.parse", { workspace: WS_B, text: BRIEF });
	});

	after(async () => {
		await targetNode?.stop();
		await authzNode?.stop();
		await nats?.stop();
		await idp.stop();
		if (dataDir) rmSync(dataDir, { recursive: true, force: true });
	});

	it("refuses an edge call without a credential, or with a bad one, with 401", async () => {
		await assert.rejects(edge("intent.list", { workspace: WS_A }), rejectsWith(401, "UNAUTHENTICATED", (e) => assert.match(e.message, /needs a credential/)));
		await assert.rejects(edge("intent.list", { workspace: WS_A }, { bearer: "not-a-token" }), rejectsWith(401, "UNAUTHENTICATED", (e) => assert.match(e.message, /not valid/)));
		await assert.rejects(edge("intent.list", { workspace: WS_A }, { apiKey: "sk_0000000000000000_" + "x".repeat(43) }), rejectsWith(401, "UNAUTHENTICATED"));
	});

	it("lets a workspace-A viewer read in A and nothing in B, with the reason and trace id of each refusal", async () => {
		const page = await edge<{ items: IntentParse[] }>("intent.list", { workspace: WS_A }, bearer(viewer));
		assert.deepEqual(page.items.map((p) => p.id), [parseInA.id]);
		// Reading by id looks the parse up first (an inner call, trusted) to decide on its own workspace.
		assert.equal((await edge<IntentParse>("intent.get", { id: parseInA.id }, bearer(viewer))).id, parseInA.id);
		let traceId: string | undefined;
		await assert.rejects(
			edge("intent.get", { id: parseInB.id }, bearer(viewer)),
			rejectsWith(403, "FORBIDDEN", (e) => {
				assert.equal(e.data?.reason, "no policy permits");
				assert.equal(e.data?.cedar_action, "intents.read");
				traceId = e.data?.trace_id as string;
				assert.ok(traceId && e.message.includes(traceId), e.message);
			}),
		);
		await assert.rejects(edge("intent.list", { workspace: WS_B }, bearer(viewer)), rejectsWith(403, "FORBIDDEN", (e) => assert.equal(e.data?.reason, "no policy permits")));
		// The refusal is in the audit log under its trace id.
		const [record] = await audit({ trace_id: traceId }, admin);
		assert.deepEqual([record?.kind, record?.actor, record?.action, record?.resource, record?.result], ["decision", "vic", "intents.read", `Intent:${parseInB.id}`, "deny"]);
	});

	it("refuses a viewer's write and allows an editor's submission in its workspace", async () => {
		await assert.rejects(edge("intent.parse", { workspace: WS_A, text: BRIEF }, bearer(viewer)), rejectsWith(403, "FORBIDDEN"));
		const parse = await edge<IntentParse>("intent.parse", { workspace: WS_A, text: BRIEF }, bearer(editor));
		assert.equal(parse.workspace, WS_A);
		await assert.rejects(edge("intent.parse", { workspace: WS_B, text: BRIEF }, bearer(editor)), rejectsWith(403, "FORBIDDEN"));
		const decisions = await audit({ kind: "decision", user: "eda", resource: "Workspace:" }, admin);
		assert.deepEqual(decisions.map((r) => `${r.workspace}:${r.result}:${r.policies?.join(",")}`).sort(), [`${WS_A}:allow:system:editor-create`, `${WS_B}:deny:`]);
	});

	it("records the edge caller as owner of its parse and run, so an Editor may retry its own run but not another's", async () => {
		const parse = await edge<IntentParse>("intent.parse", { workspace: WS_A, text: BRIEF, request_id: "owned-parse" }, bearer(editor));
		assert.equal(parse.owner, "eda");
		assert.equal(parseInA.owner, undefined, "an internal call has no owner");
		const submitted = await edge<Run>("execution.submit", { workspace: WS_A, command: ["true"], request_id: "owned-run" }, bearer(editor));
		assert.equal(submitted.owner, "eda");
		// Without a NATS authority the run fails at start: a state both cancel and retry are decided on.
		await waitFor("the run to fail", async () => (await targetNode.call<Run, object>("execution.get", { id: submitted.id })).status === "FAILED");
		for (const action of ["execution.retry", "execution.cancel"]) {
			await assert.rejects(edge(action, { id: submitted.id }, bearer(otherEditor)), rejectsWith(403, "FORBIDDEN", (e) => assert.equal(e.data?.reason, "no policy permits")));
		}
		const retried = await edge<Run>("execution.retry", { id: submitted.id }, bearer(editor));
		assert.deepEqual([retried.id, retried.retry_count, retried.owner], [submitted.id, 1, "eda"]);
	});

	it("signs in through the OpenID provider without a credential, and the session is refused until the user is bound", async () => {
		const begun = await edge<{ authorize_url: string; state: string }>("authz.oidc.begin", {});
		const url = new URL(begun.authorize_url);
		assert.deepEqual([url.origin + url.pathname, url.searchParams.get("state"), url.searchParams.get("redirect_uri")], [`${idp.issuer}/authorize`, begun.state, REDIRECT_URL]);
		const code = idp.authorize(begun.authorize_url);
		const session = await edge<TokenPair>("authz.oidc.complete", { code, state: begun.state });
		// Authenticated (not a 401), with no role anywhere yet.
		await assert.rejects(edge("intent.list", { workspace: WS_A }, bearer(session)), rejectsWith(403, "FORBIDDEN", (e) => assert.equal(e.data?.reason, "no policy permits")));
		const [signIn] = await audit({ kind: "login", limit: 1 }, admin);
		assert.deepEqual([signIn?.action, signIn?.result], ["login.oidc", "success"]);
		await edge("authz.bindings.add", { subject: { kind: "user", id: signIn!.actor }, role: "viewer", scope: WS_A }, bearer(admin));
		await edge("intent.list", { workspace: WS_A }, bearer(session));
		// The state is single-use: a replayed callback is refused.
		await assert.rejects(edge("authz.oidc.complete", { code, state: begun.state }), rejectsWith(401, "UNAUTHENTICATED", (e) => assert.match(e.message, /not started here or took too long/)));
	});

	it("decides one edge call per service family: telemetry, dead letters, curation, assets", async () => {
		// Alert rules: the workspace's admins (here the platform admin), not its editors; deleting reads the rule's workspace first.
		const rule = { id: "slow-loss", name: "loss stuck", workspace: WS_A, metric: "loss", op: ">", threshold: 5 };
		await assert.rejects(edge("telemetry.rules.create", rule, bearer(editor)), rejectsWith(403, "FORBIDDEN"));
		await edge("telemetry.rules.create", rule, bearer(admin));
		await assert.rejects(edge("telemetry.rules.delete", { id: rule.id }, bearer(editor)), rejectsWith(403, "FORBIDDEN", (e) => assert.equal(e.data?.cedar_action, "alerts.rules.manage")));
		assert.deepEqual(await edge("telemetry.rules.delete", { id: rule.id }, bearer(admin)), { id: rule.id, deleted: true });
		await assert.rejects(edge("deadletters.stats", {}, bearer(editor)), rejectsWith(403, "FORBIDDEN"));
		await edge("deadletters.stats", {}, bearer(admin));
		for (const action of ["curation.list", "assets.list"]) {
			await edge(action, { workspace: WS_A }, bearer(viewer));
			await assert.rejects(edge(action, { workspace: WS_B }, bearer(viewer)), rejectsWith(403, "FORBIDDEN"));
		}
	});

	it("grants through the department tree: a role bound to a department reaches its sub-departments until one moves out", async () => {
		const as = bearer(admin);
		await edge("authz.departments.put", { id: "eng", name: "Engineering" }, as);
		await edge("authz.departments.put", { id: "eng-ml", name: "Machine learning", parent: "eng" }, as);
		await edge("authz.users.put", { id: "dee", name: "dee", department: "eng-ml", password: PASSWORD }, as);
		await edge("authz.bindings.add", { subject: { kind: "department", id: "eng" }, role: "editor", scope: WS_A }, as);
		const dee = await login("dee");
		assert.equal((await edge<IntentParse>("intent.parse", { workspace: WS_A, text: BRIEF }, bearer(dee))).workspace, WS_A);

		await assert.rejects(edge("authz.departments.put", { id: "eng", name: "Engineering", parent: "eng-ml" }, as), rejectsWith(422, "INVALID", (e) => assert.match(e.message, /inside itself/)));
		await assert.rejects(edge("authz.departments.remove", { id: "eng" }, as), rejectsWith(409, "CONFLICT", (e) => assert.match(e.message, /not empty/)));
		await assert.rejects(edge("authz.departments.put", { id: "x", name: "x" }, bearer(editor)), rejectsWith(403, "FORBIDDEN"));

		// Moved to the root, eng-ml no longer inherits eng's binding: the next call is refused.
		await edge("authz.departments.put", { id: "eng-ml", name: "Machine learning" }, as);
		await assert.rejects(edge("intent.parse", { workspace: WS_A, text: BRIEF }, bearer(dee)), rejectsWith(403, "FORBIDDEN"));
		const changes = await audit({ kind: "change", resource: "Department:" }, admin);
		assert.ok(changes.length >= 3, `${changes.length} department changes audited`);
	});

	it("denies actions no rule covers, and everything in authz but logging in to non-admins", async () => {
		await assert.rejects(edge("authz.authorize", { principal: "vic", action: "runs.read", resource: { type: "Workspace", id: WS_B, workspace: WS_B } }, bearer(viewer)), rejectsWith(403, "FORBIDDEN", (e) => assert.equal(e.data?.reason, "no policy covers authz.authorize")));
		await assert.rejects(edge("authz.audit.query", { limit: 1 }, bearer(editor)), rejectsWith(403, "FORBIDDEN"));
		await assert.rejects(edge("authz.users.put", { id: "mallory", name: "m" }, bearer(editor)), rejectsWith(403, "FORBIDDEN"));
	});

	it("lets internal calls (no edge mark) through without a credential", async () => {
		const page = await targetNode.call<{ items: IntentParse[] }, object>("intent.list", { workspace: WS_B });
		assert.ok(page.items.some((p) => p.id === parseInB.id));
	});

	it("stops a token and an API key at once when they are revoked", async () => {
		const session = await login("vic");
		const { key, record } = await edge<{ key: string; record: { id: string; masked: string } }>("authz.apiKeys.create", { name: "ci" }, bearer(session));
		assert.equal(record.masked, `sk_…${key.slice(-4)}`);
		const listed = await edge<{ items: Array<Record<string, unknown>> }>("authz.apiKeys.list", {}, { apiKey: key });
		assert.deepEqual(listed.items.map((k) => [k.id, k.masked, "hash" in k]), [[record.id, record.masked, false]]);
		await edge("intent.list", { workspace: WS_A }, { apiKey: key });
		await edge("authz.apiKeys.revoke", { id: record.id }, bearer(session));
		await assert.rejects(edge("intent.list", { workspace: WS_A }, { apiKey: key }), rejectsWith(401, "UNAUTHENTICATED", (e) => assert.match(e.message, /revoked/)));
		await edge("authz.logout", { token: session.access_token });
		await assert.rejects(edge("intent.list", { workspace: WS_A }, bearer(session)), rejectsWith(401, "UNAUTHENTICATED", (e) => assert.match(e.message, /revoked/)));
		// The other session of the same user is untouched.
		await edge("intent.list", { workspace: WS_A }, bearer(viewer));
		const changes = await audit({ kind: "change", resource: `ApiKey:${record.id}` }, admin);
		assert.deepEqual(changes.map((r) => `${r.action}:${r.actor}`), ["apikey.revoke:vic", "apikey.create:vic"]);
	});

	it("makes a forbid saved through the service beat the editor's permit at the next call", async () => {
		await edge("intent.parse", { workspace: WS_A, text: BRIEF }, bearer(editor));
		const text = `forbid (principal, action == Savassan::Action::"intents.parse", resource)\nwhen { resource.workspace == "${WS_A}" };`;
		await edge("authz.policies.save", { id: "freeze-a", text, workspace: WS_A }, bearer(admin));
		await assert.rejects(edge("intent.parse", { workspace: WS_A, text: BRIEF }, bearer(editor)), rejectsWith(403, "FORBIDDEN", (e) => assert.equal(e.data?.reason, "forbidden by freeze-a")));
		const [saved] = await audit({ kind: "change", resource: "Policy:freeze-a" }, admin);
		assert.deepEqual([saved?.action, saved?.actor, (saved?.after as { text: string }).text], ["policy.put", BOOTSTRAP_ADMIN, text]);
		// The explain endpoint names the same policy without acting.
		const explained = await edge<{ decision: string; policies: string[] }>(
			"authz.decide",
			{ principal: "eda", action: "intents.parse", resource: { type: "Workspace", id: WS_A, workspace: WS_A } },
			bearer(admin),
		);
		assert.deepEqual([explained.decision, explained.policies], ["deny", ["freeze-a"]]);
	});

	it("refuses an invalid policy with 422 and the line of the mistake", async () => {
		const text = `permit (principal, action, resource)\nwhen { resource.no_such_attribute == "x" };`;
		await assert.rejects(
			edge("authz.policies.save", { id: "broken", text }, bearer(admin)),
			rejectsWith(422, "INVALID", (e) => {
				assert.equal(e.data?.line, 2);
				assert.match(e.message, /line 2/);
			}),
		);
	});

	it("locks an account after repeated failed logins, with 423 and a clear message; every attempt is audited", async () => {
		for (let i = 0; i < 3; i++) await assert.rejects(login("eda", "wrong-password-here"), rejectsWith(401, "UNAUTHENTICATED", (e) => assert.equal(e.message, "Wrong username or password.")));
		await assert.rejects(login("eda"), rejectsWith(423, "LOCKED", (e) => assert.match(e.message, /^Too many failed logins; try again after /)));
		const attempts = await audit({ kind: "login", resource: "Account:eda" }, admin);
		assert.deepEqual(attempts.slice(0, 4).map((r) => r.result), ["failure", "failure", "failure", "failure"]);
		assert.equal(attempts.at(-1)?.result, "success");
	});

	it("keeps users, sessions, revocations, policies and the audit log across a restart of the authz service", async () => {
		const before = await audit({}, admin);
		await authzNode.stop();
		authzNode = await startAuthz();
		await targetNode.waitForServices(["authz"], 10_000);
		// Same signing key, same session store: the token issued before the restart still works.
		await edge("intent.list", { workspace: WS_A }, bearer(viewer));
		await assert.rejects(edge("intent.parse", { workspace: WS_A, text: BRIEF }, bearer(editor)), rejectsWith(403, "FORBIDDEN", (e) => assert.equal(e.data?.reason, "forbidden by freeze-a")));
		const relogged = await login("vic");
		assert.ok(relogged.access_token);
		const afterRestart = await audit({ limit: 1000 }, admin);
		const ids = new Set(afterRestart.map((r) => r.id));
		assert.ok(before.every((r) => ids.has(r.id)), "every record stored before the restart is still there");
		// The bootstrap ran once: one admin creation in the whole log.
		assert.equal(afterRestart.filter((r) => r.action === "user.put" && r.resource === `User:${BOOTSTRAP_ADMIN}`).length, 1);
		// Each record is stored with its id as the de-duplication id, so a retried publish is stored once.
		const last = await lastOnSubject(busOf(authzNode).jsm, STREAMS.audit.name, subjects.audit("authz", "change"));
		assert.equal(last?.header?.get(HEADERS.msgId), last?.json<AuditRecord>().id);
		const exported = await edge<{ data: string }>("authz.audit.export", { kind: "change" }, bearer(admin));
		const lines = exported.data.trim().split("\n").map((l) => JSON.parse(l) as AuditRecord);
		assert.ok(lines.length > 5 && lines.every((r) => r.kind === "change"));
	});

	it("escapes record keys into valid KV keys that keep their prefixes", () => {
		assert.equal(escapeKey("user:a.b@c"), "user=3aa=2eb=40c");
		assert.ok(escapeKey("user:alice").startsWith(escapeKey("user:")));
		assert.match(escapeKey("é|x y"), /^[A-Za-z0-9_=-]+$/);
	});
});
