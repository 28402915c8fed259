/**
 * The decision point on the in-memory directory and policy stores: a principal × action × resource table with the
 * determining policies, tenant isolation, forbid over permit, validation on save, dry-runs against drafts, cache
 * invalidation on every kind of change, and the audit trail of all of it.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { toJsonLines, type AuditRecord } from "../services/authz/audit/audit";
import { MemoryAuditLog } from "../services/authz/audit/memory-audit";
import { openAuthz, type Authz } from "../services/authz/authz-context";
import { PLATFORM } from "../services/authz/directory/model";
import { AuthzError } from "../services/authz/errors";
import { cedar } from "../services/authz/policy/cedar";
import type { ResourceRef } from "../services/authz/policy/entities";
import { SYSTEM_POLICIES } from "../services/authz/policy/system-policies";

const admin = { actor: "root", trace_id: "setup" };
const R = {
	runA1: { type: "Run", id: "run-a1", workspace: "ws-a", owner: "alice" },
	runA2: { type: "Run", id: "run-a2", workspace: "ws-a", owner: "bob" },
	runB1: { type: "Run", id: "run-b1", workspace: "ws-b", owner: "carol" },
	wsA: { type: "Workspace", id: "ws-a", workspace: "ws-a" },
	wsB: { type: "Workspace", id: "ws-b", workspace: "ws-b" },
	topicA: { type: "Topic", id: "runs.run-a1", workspace: "ws-a" },
	topicB: { type: "Topic", id: "runs.run-b1", workspace: "ws-b" },
	policyB: { type: "AuthzObject", id: "policy:freeze", workspace: "ws-b", attrs: { kind: "policy" } },
	platformDir: { type: "AuthzObject", id: "directory", workspace: PLATFORM, attrs: { kind: "directory" } },
	aliceKey: { type: "AuthzObject", id: "key:k1", workspace: PLATFORM, owner: "alice", attrs: { kind: "api_key" } },
} satisfies Record<string, ResourceRef>;

const NONE = "no policy permits";

/** corp > research > vision; bob is in vision (and its group), carol in research. */
async function seed(authz: Authz): Promise<void> {
	const d = authz.directory;
	await d.putWorkspace({ id: "ws-a", name: "Team A" }, admin);
	await d.putWorkspace({ id: "ws-b", name: "Team B" }, admin);
	await d.putDepartment({ id: "corp", name: "Corp" }, admin);
	await d.putDepartment({ id: "research", name: "Research", parent: "corp" }, admin);
	await d.putDepartment({ id: "vision", name: "Vision", parent: "research" }, admin);
	await d.putGroup({ id: "vision-team", name: "Vision team", department: "vision" }, admin);
	for (const id of ["root", "alice", "dave", "eve", "vic"]) await d.putUser({ id, name: id }, admin);
	await d.putUser({ id: "bob", name: "bob", groups: ["vision-team"], department: "vision" }, admin);
	await d.putUser({ id: "carol", name: "carol", department: "research" }, admin);
	await d.bind({ subject: { kind: "user", id: "root" }, role: "admin", scope: PLATFORM }, admin);
	await d.bind({ subject: { kind: "user", id: "alice" }, role: "editor", scope: "ws-a" }, admin);
	await d.bind({ subject: { kind: "group", id: "vision-team" }, role: "viewer", scope: "ws-a" }, admin);
	await d.bind({ subject: { kind: "department", id: "research" }, role: "editor", scope: "ws-b" }, admin);
	await d.bind({ subject: { kind: "user", id: "dave" }, role: "admin", scope: "ws-b" }, admin);
	await d.bind({ subject: { kind: "user", id: "vic" }, role: "viewer", scope: PLATFORM }, admin);
}

type Case = [principal: string, action: string, resource: ResourceRef, decision: "allow" | "deny", policies: string[], why: string];

const TABLE: Case[] = [
	["alice", "runs.read", R.runA1, "allow", ["system:editor-read"], "editor reads in her workspace"],
	["alice", "runs.cancel", R.runA1, "allow", ["system:editor-own"], "editor changes what she owns"],
	["alice", "runs.cancel", R.runA2, "deny", [], "editor cannot change what bob owns"],
	["alice", "runs.submit", R.wsA, "allow", ["system:editor-create"], "editor creates in her workspace"],
	["alice", "runs.read", R.runB1, "deny", [], "no role in ws-b"],
	["bob", "runs.read", R.runA1, "allow", ["system:viewer"], "viewer through his group"],
	["bob", "runs.cancel", R.runA2, "deny", [], "a viewer changes nothing, not even what he owns"],
	["bob", "runs.submit", R.wsB, "allow", ["system:editor-create"], "editor in ws-b through an ancestor department"],
	["bob", "runs.cancel", R.runB1, "deny", [], "editor, but carol owns it"],
	["carol", "runs.cancel", R.runB1, "allow", ["system:editor-own"], "editor through her department, owner"],
	["dave", "authz.policies.write", R.policyB, "allow", ["system:workspace-admin"], "workspace admin administers his workspace"],
	["dave", "authz.directory.write", R.platformDir, "deny", [], "but not the platform"],
	["root", "authz.directory.write", R.platformDir, "allow", ["system:platform-admin"], "platform admin"],
	["root", "runs.cancel", R.runB1, "allow", ["system:platform-admin"], "platform admin everywhere"],
	["vic", "runs.read", R.runB1, "allow", ["system:viewer"], "platform-wide viewer"],
	["vic", "live.subscribe", R.topicB, "allow", ["system:viewer"], "subscribing is reading"],
	["vic", "runs.cancel", R.runB1, "deny", [], "platform-wide viewer changes nothing"],
	["eve", "runs.read", R.runA1, "deny", [], "no binding at all"],
	["alice", "authz.keys.manage", R.aliceKey, "allow", ["system:own-api-keys"], "everyone manages their own keys"],
	["bob", "authz.keys.manage", R.aliceKey, "deny", [], "not someone else's"],
	["alice", "authz.policies.write", R.policyB, "deny", [], "an editor is no admin"],
];

describe("authz decisions", () => {
	let authz: Authz;
	let audit: MemoryAuditLog;
	const decide = (principal: string, action: string, resource: ResourceRef, trace_id?: string, context?: Record<string, string>) =>
		authz.decisions.authorize({ principal, action, resource, trace_id, context });

	before(async () => {
		audit = new MemoryAuditLog();
		authz = await openAuthz({ audit });
		await seed(authz);
	});

	it("the system policies type-check against the schema", () => {
		const answer = cedar.validate({ schema: authz.schema.text, policies: { staticPolicies: { ...SYSTEM_POLICIES } }, validationSettings: { mode: "strict" } });
		assert.equal(answer.type, "success");
		assert.deepEqual(answer.type === "success" && answer.validationErrors, []);
	});

	it("decides the table: principal × action × resource → decision and determining policies, each audited", async () => {
		for (const [i, [p, action, resource, expected, policies, why]] of TABLE.entries()) {
			const d = await decide(p, action, resource, `case-${i}`);
			const label = `${p} ${action} ${resource.type}:${resource.id} (${why})`;
			assert.equal(d.decision, expected, `${label}: ${d.reason}`);
			assert.deepEqual(d.policies, policies, label);
			assert.equal(d.reason, policies.length ? `permitted by ${policies.join(", ")}` : NONE, label);
			assert.deepEqual(d.errors, [], label);
			const [rec] = audit.query({ trace_id: `case-${i}` });
			assert.ok(rec, `audit record for ${label}`);
			assert.equal(rec.kind, "decision");
			assert.equal(rec.actor, p);
			assert.equal(rec.action, action);
			assert.equal(rec.resource, `${resource.type}:${resource.id}`);
			assert.equal(rec.result, expected);
			assert.equal(rec.reason, d.reason);
		}
	});

	it("denies by default what it does not know", async () => {
		const unknown = await decide("alice", "runs.explode", R.runA1, "unknown-action");
		assert.equal(unknown.decision, "deny");
		assert.match(unknown.reason, /action "runs.explode" is not known to authorization; denied by default/);
		const wrongType = await decide("alice", "runs.cancel", R.wsA);
		assert.equal(wrongType.decision, "deny");
		assert.match(wrongType.reason, /does not apply to a Workspace \(it applies to Run\)/);
		const ghost = await decide("nobody", "runs.read", R.runA1);
		assert.equal(ghost.decision, "deny");
		assert.match(ghost.reason, /user nobody is unknown or disabled/);
		assert.equal(audit.query({ trace_id: "unknown-action" })[0]?.result, "deny");
	});

	it("isolates tenants: a ws-a editor can neither read, list, search nor subscribe to ws-b", async () => {
		const b = [["runs.read", R.runB1], ["runs.list", R.wsB], ["catalog.search", R.wsB], ["live.subscribe", R.topicB]] as const;
		const a = [["runs.read", R.runA1], ["runs.list", R.wsA], ["catalog.search", R.wsA], ["live.subscribe", R.topicA]] as const;
		for (const [action, resource] of b) {
			const d = await decide("alice", action, resource, `iso-${action}`);
			assert.deepEqual([d.decision, d.reason], ["deny", NONE], `${action} on ws-b`);
			assert.equal(audit.query({ trace_id: `iso-${action}` })[0]?.result, "deny");
		}
		for (const [action, resource] of a) assert.equal((await decide("alice", action, resource)).decision, "allow", `${action} on ws-a`);
		// A policy scoped to ws-a cannot reach ws-b, however broad its text.
		await authz.policies.save({ id: "open-a", scope: "ws-a", text: "permit (principal, action, resource);" }, admin);
		assert.deepEqual((await decide("eve", "runs.read", R.runA1)).policies, ["open-a"]);
		assert.equal((await decide("eve", "runs.read", R.runB1)).decision, "deny");
		assert.equal((await decide("eve", "datasets.read", { type: "Dataset", id: "ds-b", workspace: "ws-b" })).decision, "deny");
		assert.equal((await authz.decisions.dryRun({ principal: "eve", action: "runs.read", resource: R.runB1 })).decision, "deny");
		await authz.policies.delete("open-a", admin);
		assert.equal((await decide("eve", "runs.read", R.runA1)).decision, "deny");
	});

	it("a forbid beats every permit, the platform admin's included", async () => {
		await authz.policies.save({ id: "open-b", scope: "ws-b", text: 'permit (principal, action, resource) when { resource.workspace == "ws-b" };' }, admin);
		await authz.policies.save({ id: "freeze-b", scope: "ws-b", text: 'forbid (principal, action in Savassan::Action::"write", resource)\nwhen { resource.workspace == "ws-b" };' }, admin);
		for (const p of ["root", "dave", "carol", "eve"]) {
			const d = await decide(p, "runs.cancel", R.runB1, `forbid-${p}`);
			assert.deepEqual([d.decision, d.policies, d.reason], ["deny", ["freeze-b"], "forbidden by freeze-b"], p);
			assert.equal(audit.query({ trace_id: `forbid-${p}` })[0]?.reason, "forbidden by freeze-b");
		}
		// Reads are not frozen: several permits determine it, all named.
		assert.deepEqual((await decide("root", "runs.read", R.runB1)).policies, ["open-b", "system:platform-admin"]);
		// A forbid on API-key requests, through the context.
		await authz.policies.save({ id: "no-admin-by-key", scope: PLATFORM, text: 'forbid (principal, action in Savassan::Action::"admin", resource)\nwhen { context has via && context.via == "api_key" };' }, admin);
		assert.equal((await decide("root", "authz.directory.write", R.platformDir, undefined, { via: "api_key" })).reason, "forbidden by no-admin-by-key");
		assert.equal((await decide("root", "authz.directory.write", R.platformDir, undefined, { via: "password" })).decision, "allow");
		for (const id of ["open-b", "freeze-b", "no-admin-by-key"]) await authz.policies.delete(id, admin);
		assert.equal((await decide("carol", "runs.cancel", R.runB1)).decision, "allow");
	});

	it("rejects a bad policy on save with line, column and reason, and stores nothing", async () => {
		const refused = async (text: string, scope = "ws-a") => {
			const err = await authz.policies.save({ id: "bad", scope, text }, admin).then(() => undefined, (e: unknown) => e);
			assert.ok(err instanceof AuthzError, `expected a refusal for ${text}`);
			return err;
		};
		const typo = await refused('permit (principal, action, resource)\nwhen { resource.wrkspace == "ws-a" };');
		assert.equal(typo.code, "invalid");
		assert.deepEqual(typo.problems?.map((p) => p.line), [2]);
		assert.match(typo.message, /^Policy bad is not valid: line 2, column 8: attribute `wrkspace` on entity type `Savassan::\w+` not found; did you mean `workspace`\?/);
		const syntax = await refused('permit (principal, action, resource)\nwhen {\n  resource.workspace == \n};');
		assert.equal(syntax.problems?.[0]?.line, 4);
		assert.match(syntax.message, /unexpected token `}`/);
		const action = await refused('forbid (principal, action == Savassan::Action::"runs.explode", resource);');
		assert.match(action.message, /line 1, column \d+: .*runs\.explode/);
		assert.match((await refused("permit (principal, action, resource);\nforbid (principal, action, resource);")).message, /exactly one permit or forbid statement without slots; found 2/);
		assert.equal((await refused("permit (principal, action, resource);", "ws-nowhere")).code, "not_found");
		assert.equal(authz.index.get("bad"), undefined);
		assert.equal(audit.query({ resource: "Policy:bad" }).length, 0);
	});

	it("dry-runs a request without acting, and against a draft before it is saved", async () => {
		const before = audit.size;
		const req = { principal: "carol", action: "runs.cancel", resource: R.runB1 };
		assert.deepEqual((await authz.decisions.dryRun(req)).policies, ["system:editor-own"]);
		const draft = await authz.policies.prepare({ id: "draft-freeze", scope: "ws-b", text: "forbid (principal, action, resource) when { resource has owner && resource.owner == principal };" }, admin);
		const dry = await authz.decisions.dryRun(req, [{ put: draft }]);
		assert.deepEqual([dry.decision, dry.policies], ["deny", ["draft-freeze"]]);
		assert.deepEqual([dry.current?.decision, dry.current?.policies], ["allow", ["system:editor-own"]]);
		// Nothing was saved, nothing was audited, the real decision is unchanged.
		assert.equal(audit.size, before);
		assert.equal(authz.index.get("draft-freeze"), undefined);
		assert.equal((await decide("carol", "runs.cancel", R.runB1)).decision, "allow");
		// A draft that deletes a saved policy.
		await authz.policies.save({ id: "freeze-b2", scope: "ws-b", text: "forbid (principal, action, resource);" }, admin);
		const lifted = await authz.decisions.dryRun(req, [{ delete: "freeze-b2" }]);
		assert.deepEqual([lifted.decision, lifted.current?.reason], ["allow", "forbidden by freeze-b2"]);
		await authz.policies.delete("freeze-b2", admin);
	});

	it("invalidates cached decisions on membership, binding, department and policy changes", async () => {
		const read = () => decide("bob", "runs.read", R.runA1);
		assert.equal((await read()).decision, "allow");
		const again = await read();
		assert.deepEqual([again.decision, again.cached], ["allow", true]);
		await authz.directory.removeFromGroup("bob", "vision-team", { actor: "root", trace_id: "remove-bob" });
		const removed = await read();
		assert.deepEqual([removed.decision, removed.cached, removed.reason], ["deny", false, NONE]);
		await authz.directory.addToGroup("bob", "vision-team", admin);
		assert.equal((await read()).decision, "allow");

		// A binding on a department several levels up (global epoch).
		const submit = () => decide("bob", "runs.submit", R.wsB);
		assert.equal((await submit()).decision, "allow");
		assert.equal((await submit()).cached, true);
		const dept = { subject: { kind: "department" as const, id: "research" }, role: "editor", scope: "ws-b" };
		await authz.directory.unbind(dept, admin);
		assert.equal((await submit()).decision, "deny");
		await authz.directory.bind(dept, admin);
		assert.equal((await submit()).decision, "allow");

		// Moving bob's department out from under research.
		await authz.directory.putDepartment({ id: "vision", name: "Vision", parent: "corp" }, admin);
		assert.equal((await submit()).decision, "deny");
		await authz.directory.putDepartment({ id: "vision", name: "Vision", parent: "research" }, admin);
		assert.equal((await submit()).decision, "allow");

		// A user binding, and disabling the user.
		const alice = { subject: { kind: "user" as const, id: "alice" }, role: "editor", scope: "ws-a" };
		assert.equal((await decide("alice", "runs.read", R.runA1)).decision, "allow");
		await authz.directory.unbind(alice, admin);
		assert.equal((await decide("alice", "runs.read", R.runA1)).decision, "deny");
		await authz.directory.bind(alice, admin);
		await authz.directory.putUser({ id: "alice", name: "alice", disabled: true }, admin);
		assert.match((await decide("alice", "runs.read", R.runA1)).reason, /unknown or disabled/);
		await authz.directory.putUser({ id: "alice", name: "alice" }, admin);
		assert.equal((await decide("alice", "runs.read", R.runA1)).decision, "allow");

		// A policy change, in the same slice as a cached decision.
		assert.equal((await decide("alice", "runs.read", R.runA1)).cached, true);
		await authz.policies.save({ id: "hide-a1", scope: "ws-a", text: 'forbid (principal, action, resource) when { resource has owner && resource.owner == Savassan::User::"alice" && principal != resource.owner };' }, admin);
		assert.equal((await decide("alice", "runs.read", R.runA1)).decision, "allow");
		assert.deepEqual((await read()).policies, ["hide-a1"]);
		await authz.policies.delete("hide-a1", admin);
		assert.equal((await read()).decision, "allow");

		// Every change left a change record with before and after.
		const [change] = audit.query({ trace_id: "remove-bob" });
		assert.equal(change?.action, "user.group.remove");
		assert.deepEqual((change?.before as { groups: string[] }).groups, ["vision-team"]);
		assert.deepEqual((change?.after as { groups: string[] }).groups, []);
	});

	it("refuses a department loop", async () => {
		await assert.rejects(authz.directory.putDepartment({ id: "corp", name: "Corp", parent: "vision" }, admin), /cannot be placed under vision: that is inside itself/);
	});

	it("queries and exports the audit log", async () => {
		const all = audit.query({});
		const denies = audit.query({ kind: "decision", result: "deny", actor: "alice" });
		assert.ok(denies.length >= 5 && denies.every((r) => r.actor === "alice" && r.result === "deny"));
		const runs = audit.query({ resource: "Run:" });
		assert.ok(runs.length && runs.every((r) => r.resource?.startsWith("Run:")));
		assert.deepEqual(audit.query({ resource: "Run:run-b1", actor: "carol", limit: 1 }).map((r) => r.resource), ["Run:run-b1"]);
		const mid = all[Math.floor(all.length / 2)]!.at;
		assert.ok(audit.query({ to: mid }).every((r) => r.at <= mid));
		assert.ok(audit.query({ from: mid }).every((r) => r.at >= mid));
		const policyChanges = audit.query({ resource: "Policy:", kind: "change" });
		assert.ok(policyChanges.some((r) => r.action === "policy.delete" && r.after === undefined && (r.before as { id: string }).id === "open-a"));
		const lines = toJsonLines(all).trimEnd().split("\n");
		assert.equal(lines.length, all.length);
		assert.deepEqual(JSON.parse(lines[0]!) as AuditRecord, JSON.parse(JSON.stringify(all[0])));
	});
});
