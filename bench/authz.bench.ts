/**
 * Authz decision benchmark: 1,000 custom policies over 50 workspaces and 10,000 users (in 100 groups and a
 * 3-level department tree), every decision audited to the in-memory log, each path against a same-run baseline:
 *   - cached decision (same principal, action, resource again) vs a bare Map lookup of an equally long key;
 *   - uncached decision (first time for that resource; principal entities and policy slices warm) vs a bare
 *     stateless Cedar isAuthorized with 2 policies (NOTES.md: ≈ 300 µs);
 *   - for scale, the unsliced set: statefulIsAuthorized over all 1,007 policies preparsed (NOTES.md: ≈ 2.9 ms).
 * Usage: npx tsc -p . && node dist/bench/authz.bench.js [--requests 20000]
 */
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { MemoryAuditLog } from "../services/authz/audit/memory-audit";
import { openAuthz, type Authz } from "../services/authz/authz-context";
import { PLATFORM } from "../services/authz/directory/model";
import { cedar, type EntityJson } from "../services/authz/policy/cedar";
import type { AuthzRequest } from "../services/authz/policy/decision-point";
import { SYSTEM_POLICIES } from "../services/authz/policy/system-policies";
import { mulberry32 } from "./catalog-data";
import { median, percentile } from "./support";

const { values: args } = parseArgs({ options: { requests: { type: "string", default: "20000" } } });
const REQUESTS = Number(args.requests);
const WORKSPACES = 50;
const USERS = 10_000;
const GROUPS = 100;
const POLICIES = 1_000;
const rand = mulberry32(42);
const int = (n: number) => Math.floor(rand() * n);
const us = (ms: number) => (ms * 1000).toFixed(1);
const meta = { actor: "bench" };

const ACTIONS: Array<[action: string, type: string]> = [
	["runs.read", "Run"],
	["runs.cancel", "Run"],
	["datasets.read", "Dataset"],
	["datasets.update", "Dataset"],
	["models.promote", "Model"],
	["live.subscribe", "Topic"],
	["runs.list", "Workspace"],
];
const DOMAIN_ACTIONS = ["runs.cancel", "runs.retry", "datasets.update", "models.promote", "models.rollback", "intents.submit", "catalog.update"];

/** 20 policies per workspace: forbids and permits on groups, departments, owners and context, spread over domains. */
function policyText(i: number, ws: string): string {
	const group = `Savassan::Group::"g-${int(GROUPS)}"`;
	const action = `Savassan::Action::"${DOMAIN_ACTIONS[i % DOMAIN_ACTIONS.length]}"`;
	switch (i % 4) {
		case 0:
			return `forbid (principal in ${group}, action == ${action}, resource) when { resource.workspace == "${ws}" && context has via && context.via == "api_key" };`;
		case 1:
			return `permit (principal in ${group}, action == ${action}, resource) when { resource has owner && resource.owner != principal };`;
		case 2:
			return `permit (principal in Savassan::Department::"d-${int(10)}", action == ${action}, resource);`;
		default:
			return `forbid (principal, action == ${action}, resource) when { resource has owner && resource.owner == Savassan::User::"u-${int(USERS)}" };`;
	}
}

async function build(): Promise<{ authz: Authz; buildMs: number; all: Record<string, string> }> {
	const t0 = performance.now();
	const authz = await openAuthz({ audit: new MemoryAuditLog(), cacheSize: 200_000 });
	const d = authz.directory;
	for (let w = 0; w < WORKSPACES; w++) await d.putWorkspace({ id: `ws-${w}`, name: `Workspace ${w}` }, meta);
	await d.putDepartment({ id: "d-root", name: "root" }, meta);
	for (let i = 0; i < 10; i++) await d.putDepartment({ id: `d-${i}`, name: `d-${i}`, parent: i < 3 ? "d-root" : `d-${i % 3}` }, meta);
	for (let g = 0; g < GROUPS; g++) await d.putGroup({ id: `g-${g}`, name: `g-${g}`, department: `d-${g % 10}` }, meta);
	for (let g = 0; g < GROUPS; g++) await d.bind({ subject: { kind: "group", id: `g-${g}` }, role: "viewer", scope: `ws-${g % WORKSPACES}` }, meta);
	for (let u = 0; u < USERS; u++) {
		await d.putUser({ id: `u-${u}`, name: `user ${u}`, groups: [`g-${u % GROUPS}`, `g-${(u * 7) % GROUPS}`], department: `d-${u % 10}` }, meta);
		await d.bind({ subject: { kind: "user", id: `u-${u}` }, role: u % 3 ? "viewer" : "editor", scope: `ws-${u % WORKSPACES}` }, meta);
	}
	const all: Record<string, string> = { ...SYSTEM_POLICIES };
	for (let i = 0; i < POLICIES; i++) {
		const ws = `ws-${i % WORKSPACES}`;
		const text = policyText(i, ws);
		await authz.policies.save({ id: `p-${i}`, scope: i % 100 === 99 ? PLATFORM : ws, text }, meta);
		all[`p-${i}`] = text;
	}
	return { authz, buildMs: performance.now() - t0, all };
}

function requests(n: number, offset: number): AuthzRequest[] {
	return Array.from({ length: n }, (_, i) => {
		const u = int(USERS);
		const [action, type] = ACTIONS[int(ACTIONS.length)]!;
		// 4 in 5 in the user's own workspace, the rest elsewhere (denied by isolation).
		const ws = `ws-${int(5) ? u % WORKSPACES : int(WORKSPACES)}`;
		const id = type === "Workspace" ? ws : `r-${offset + i}`;
		const context: AuthzRequest["context"] = i % 2 ? { via: "api_key" } : {};
		return { principal: `u-${u}`, action, resource: { type, id, workspace: ws, owner: `u-${int(USERS)}` }, context };
	});
}

async function main(): Promise<void> {
	console.log(`Node ${process.version}, ${cpus().length} cores; ${USERS.toLocaleString("en-US")} users, ${POLICIES.toLocaleString("en-US")} policies, ${WORKSPACES} workspaces; ${REQUESTS.toLocaleString("en-US")} requests\n`);
	const { authz, buildMs, all } = await build();
	// Warm-up on other resources: every user's entities and every policy slice built, the JIT settled.
	for (let u = 0; u < USERS; u++) await authz.decisions.authorize({ principal: `u-${u}`, action: "runs.list", resource: { type: "Workspace", id: `ws-${u % WORKSPACES}`, workspace: `ws-${u % WORKSPACES}` } });
	for (const r of requests(REQUESTS, REQUESTS)) await authz.decisions.authorize(r);

	const uncached: number[] = [];
	const cached: number[] = [];
	const fresh = requests(REQUESTS, 2 * REQUESTS);
	let allowed = 0;
	for (const r of fresh) {
		const t = performance.now();
		const d = await authz.decisions.authorize(r);
		uncached.push(performance.now() - t);
		if (d.cached) throw new Error("an uncached request was answered from the cache");
		if (d.decision === "allow") allowed++;
	}
	for (const r of fresh) {
		const t = performance.now();
		const d = await authz.decisions.authorize(r);
		cached.push(performance.now() - t);
		if (!d.cached) throw new Error("a repeated request missed the cache");
	}

	// Baselines, same run.
	const map = new Map<string, number>();
	const keys = fresh.map((r) => `${r.principal}\u00010.1\u00011000\u0001${r.action}\u0001${r.resource.type}\u0001${r.resource.id}\u0001${r.resource.workspace}\u0001${r.resource.owner}\u0001${JSON.stringify(r.context)}`);
	keys.forEach((k, i) => map.set(k, i));
	const bareMap: number[] = [];
	let sink = 0;
	for (const k of keys) {
		const t = performance.now();
		sink += map.get(k)!;
		bareMap.push(performance.now() - t);
	}
	const two = { p1: SYSTEM_POLICIES["system:viewer"]!, p2: `forbid (principal, action, resource) when { resource.workspace == "ws-none" };` };
	const bareCedar: number[] = [];
	const entities = (r: AuthzRequest): EntityJson[] => [
		{ uid: { type: "Savassan::User", id: r.principal }, attrs: { name: r.principal }, parents: [], tags: { [r.resource.workspace]: ["viewer"] } },
		{ uid: { type: `Savassan::${r.resource.type}`, id: r.resource.id }, attrs: { workspace: r.resource.workspace }, parents: [] },
		{ uid: { type: "Savassan::Action", id: r.action }, attrs: {}, parents: [{ type: "Savassan::Action", id: "read" }] },
	];
	const call = (r: AuthzRequest) => ({ principal: { type: "Savassan::User", id: r.principal }, action: { type: "Savassan::Action", id: r.action }, resource: { type: `Savassan::${r.resource.type}`, id: r.resource.id }, context: {}, entities: entities(r) });
	for (const r of fresh.slice(0, 5_000)) {
		const t = performance.now();
		const a = cedar.isAuthorized({ ...call(r), policies: { staticPolicies: two } });
		bareCedar.push(performance.now() - t);
		if (a.type !== "success") throw new Error(JSON.stringify(a.errors));
	}
	cedar.preparsePolicySet("bench-all", { staticPolicies: all });
	const unsliced: number[] = [];
	for (const r of fresh.slice(0, 300)) {
		const t = performance.now();
		cedar.statefulIsAuthorized({ ...call(r), preparsedPolicySetId: "bench-all" });
		unsliced.push(performance.now() - t);
	}

	console.log(`build: ${(buildMs / 1000).toFixed(1)} s (directory, 1,000 policies validated on save); ${((allowed / fresh.length) * 100).toFixed(0)} % of the measured requests allowed (checksum ${sink})\n`);
	console.log("| decision | median | p99 | same-run baseline (median / p99) | ratio of medians | target |");
	console.log("|---|---|---|---|---|---|");
	console.log(`| cached | ${us(median(cached))} µs | ${us(percentile(cached, 99))} µs | bare Map lookup ${us(median(bareMap))} / ${us(percentile(bareMap, 99))} µs | ${(median(cached) / median(bareMap)).toFixed(0)} × | ≤ 50 µs median |`);
	console.log(`| uncached (sliced, preparsed) | ${us(median(uncached))} µs | ${us(percentile(uncached, 99))} µs | stateless isAuthorized, 2 policies ${us(median(bareCedar))} / ${us(percentile(bareCedar, 99))} µs | ${(median(uncached) / median(bareCedar)).toFixed(2)} × | ≤ 1 ms |`);
	console.log(`| for scale: statefulIsAuthorized over all ${Object.keys(all).length} policies | ${us(median(unsliced))} µs | ${us(percentile(unsliced, 99))} µs | | | |`);
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
