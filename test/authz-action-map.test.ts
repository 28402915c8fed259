/**
 * Every Moleculer action of the platform against ACTION_MAP and the decision point: for each mapped action one
 * allowed and one refused call (Viewer / Editor / Admin, own vs other workspace, own vs another's entity). The
 * entities a rule reads by id come from a fixture table standing in for their `get` actions, which the edge tests
 * of authz-service.test.ts exercise for real; here the mapping and the decision are what is under test.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { SCHEMAS_DIR } from "../lib/paths";
import type { EdgeVerdict } from "../lib/moleculer/authz.middleware";
import { ACTION_MAP, PUBLIC_ACTIONS, resourcesOf, UnscopedCallError, type Lookup } from "../services/authz/action-map";
import { MemoryAuditLog } from "../services/authz/audit/memory-audit";
import { openAuthz, type Authz } from "../services/authz/authz-context";
import { PLATFORM } from "../services/authz/directory/model";
import { EDGE_RULES, type AuthorizeParams } from "../services/authz/edge-rules";

/** Actions only platform processes call (AuthzMiddleware's own): never edge-callable. */
const INTERNAL_ONLY = new Set(["authz.authenticate", "authz.authorize"]);

const setup = { actor: "root" };

/**
 * ws-a: vic views, eda and edb edit, ada administers; root is platform admin, pvw platform viewer. ghost is not in
 * the directory at all.
 */
async function seed(authz: Authz): Promise<void> {
	const d = authz.directory;
	for (const id of ["ws-a", "ws-b"]) await d.putWorkspace({ id, name: id }, setup);
	for (const id of ["root", "pvw", "vic", "eda", "edb", "ada"]) await d.putUser({ id, name: id }, setup);
	await d.bind({ subject: { kind: "user", id: "root" }, role: "admin", scope: PLATFORM }, setup);
	await d.bind({ subject: { kind: "user", id: "pvw" }, role: "viewer", scope: PLATFORM }, setup);
	for (const [id, role] of [["vic", "viewer"], ["eda", "editor"], ["edb", "editor"], ["ada", "admin"]] as const) {
		await d.bind({ subject: { kind: "user", id }, role, scope: "ws-a" }, setup);
	}
}

/** What each entity's own `get` answers, keyed by id, with the get (and catalog kind) that must be used to read it. */
const STORED: Record<string, { via: string; workspace: string; owner?: string }> = {
	"run-a": { via: "execution.get", workspace: "ws-a", owner: "eda" },
	"run-b": { via: "execution.get", workspace: "ws-b", owner: "eda" },
	"parse-a": { via: "intent.get", workspace: "ws-a", owner: "eda" },
	"parse-b": { via: "intent.get", workspace: "ws-b" },
	"model-a": { via: "catalog.get:model", workspace: "ws-a", owner: "eda" },
	"dataset-a": { via: "catalog.get:dataset", workspace: "ws-a", owner: "eda" },
	"dataset-b": { via: "catalog.get:dataset", workspace: "ws-b", owner: "eda" },
	"job-a": { via: "curation.get", workspace: "ws-a" },
	"job-b": { via: "curation.get", workspace: "ws-b" },
};
const RULES = [{ id: "rule-a", workspace: "ws-a" }, { id: "rule-all" }];

const lookup: Lookup = async <T>(action: string, params: Record<string, unknown>): Promise<T> => {
	if (action === "telemetry.rules.list") return { rules: RULES } as T;
	const found = STORED[params.id as string];
	const via = params.kind === undefined ? action : `${action}:${params.kind as string}`;
	assert.ok(found, `no fixture ${String(params.id)}`);
	assert.equal(via, found.via, `${String(params.id)} must be read through ${found.via}`);
	return { workspace: found.workspace, ...(found.owner ? { owner: found.owner } : {}) } as T;
};

type Call = [principal: string, params: Record<string, unknown>];
interface Case {
	allow: Call;
	deny: Call;
}

const A = { workspace: "ws-a" };
const B = { workspace: "ws-b" };
const readsInA: Case = { allow: ["vic", A], deny: ["vic", B] };
const createsInA: Case = { allow: ["eda", A], deny: ["vic", A] };
const platformAdmin: Case = { allow: ["root", {}], deny: ["ada", {}] };
const ownKeys: Case = { allow: ["vic", {}], deny: ["ghost", {}] };
// The refused workspace first: an allow for a later one must not win.
const acrossWorkspaces: Case = { allow: ["vic", { workspaces: ["ws-a"] }], deny: ["vic", { workspaces: ["ws-b", "ws-a"] }] };
const runRead = (idParam: string): Case => ({ allow: ["vic", { [idParam]: "run-a" }], deny: ["vic", { [idParam]: "run-b" }] });
const ownModel: Case = { allow: ["eda", { model_id: "model-a" }], deny: ["edb", { model_id: "model-a" }] };
const ruleAdmin: Case = { allow: ["ada", A], deny: ["eda", A] };

const CASES: Record<string, Case> = {
	"execution.submit": createsInA,
	"execution.list": readsInA,
	"execution.get": runRead("id"),
	"execution.logs": runRead("id"),
	// Editors change what they own; a workspace admin changes anything in it.
	"execution.cancel": { allow: ["eda", { id: "run-a" }], deny: ["edb", { id: "run-a" }] },
	"execution.retry": { allow: ["ada", { id: "run-a" }], deny: ["edb", { id: "run-a" }] },

	"intent.parse": { allow: ["eda", A], deny: ["eda", B] },
	"intent.list": readsInA,
	"intent.get": { allow: ["vic", { id: "parse-a" }], deny: ["vic", { id: "parse-b" }] },
	"intent.plan": { allow: ["vic", { id: "parse-a" }], deny: ["vic", { id: "parse-b" }] },
	"intent.submit": { allow: ["eda", { id: "parse-a" }], deny: ["vic", { id: "parse-a" }] },

	"authz.apiKeys.create": ownKeys,
	"authz.apiKeys.list": ownKeys,
	"authz.apiKeys.revoke": ownKeys,
	"authz.users.put": platformAdmin,
	"authz.users.remove": platformAdmin,
	"authz.groups.put": platformAdmin,
	"authz.groups.remove": platformAdmin,
	"authz.departments.put": platformAdmin,
	"authz.departments.remove": platformAdmin,
	"authz.workspaces.put": platformAdmin,
	"authz.bindings.add": { allow: ["ada", { scope: "ws-a" }], deny: ["ada", { scope: "ws-b" }] },
	"authz.bindings.remove": { allow: ["ada", { scope: "ws-a" }], deny: ["ada", { scope: "ws-b" }] },
	"authz.policies.save": { allow: ["ada", A], deny: ["eda", A] },
	"authz.policies.delete": platformAdmin,
	"authz.policies.dryRun": platformAdmin,
	"authz.decide": platformAdmin,
	"authz.audit.query": platformAdmin,
	"authz.audit.export": platformAdmin,

	"catalog.datasets.register": createsInA,
	"catalog.datasets.versions.register": { allow: ["eda", A], deny: ["eda", B] },
	"catalog.models.register": createsInA,
	"catalog.models.versions.register": { allow: ["eda", A], deny: ["eda", B] },
	"catalog.endpoints.register": createsInA,
	"catalog.models.promote": ownModel,
	"catalog.models.rollback": ownModel,
	"catalog.get": { allow: ["vic", { kind: "dataset", id: "dataset-a" }], deny: ["vic", { kind: "dataset", id: "dataset-b" }] },
	"catalog.search": acrossWorkspaces,
	"catalog.suggest": acrossWorkspaces,
	"catalog.lineage.upstream": acrossWorkspaces,
	"catalog.lineage.downstream": acrossWorkspaces,
	"catalog.lineage.impact": acrossWorkspaces,
	"catalog.lineage.export": acrossWorkspaces,
	"catalog.rebuild": platformAdmin,
	"catalog.check": platformAdmin,

	"assets.requestUpload": createsInA,
	"assets.completeUpload": createsInA,
	"assets.get": readsInA,
	"assets.list": readsInA,
	"assets.requestDownload": readsInA,

	"curation.start": { allow: ["eda", A], deny: ["eda", B] },
	"curation.list": readsInA,
	"curation.get": { allow: ["vic", { id: "job-a" }], deny: ["vic", { id: "job-b" }] },
	"curation.feedback": { allow: ["eda", { id: "job-a" }], deny: ["vic", { id: "job-a" }] },

	"telemetry.progress": runRead("run_id"),
	"telemetry.series": runRead("run_id"),
	// Alerts of every run are for platform-wide readers.
	"telemetry.alerts": { allow: ["vic", { run_id: "run-a" }], deny: ["vic", {}] },
	"telemetry.rules.list": ruleAdmin,
	// A rule without a workspace watches them all: the platform's to set.
	"telemetry.rules.create": { allow: ["ada", A], deny: ["ada", {}] },
	"telemetry.rules.delete": { allow: ["ada", { id: "rule-a" }], deny: ["ada", { id: "rule-all" }] },

	// Dead letters carry any context's payloads: a platform viewer is not enough.
	"deadletters.list": { allow: ["root", {}], deny: ["pvw", {}] },
	"deadletters.get": { allow: ["root", {}], deny: ["pvw", {}] },
	"deadletters.stats": { allow: ["root", {}], deny: ["pvw", {}] },
	"deadletters.replay": { allow: ["root", {}], deny: ["pvw", {}] },
};

let authz: Authz;

/** The verdict AuthzMiddleware reaches through EDGE_RULES, with the decision point called directly instead of over the bus. */
async function decide(action: string, [principal, params]: Call): Promise<EdgeVerdict> {
	const call = <T, P>(name: string, p: P): Promise<T> =>
		name === "authz.authorize" ? (authz.decisions.authorize(p as unknown as AuthorizeParams) as Promise<T>) : lookup<T>(name, p as Record<string, unknown>);
	return EDGE_RULES.decide(action, { params, principal, via: "password", call })!;
}

describe("authz action map: every platform action gets a real decision", () => {
	before(async () => {
		authz = await openAuthz({ audit: new MemoryAuditLog() });
		await seed(authz);
	});

	it("maps every action of schemas/actions except the public and the internal-only ones, and tests each mapping", () => {
		const actions = readdirSync(join(SCHEMAS_DIR, "actions")).map((f) => f.replace(/\.json$/, ""));
		const unmapped = actions.filter((a) => !ACTION_MAP[a] && !PUBLIC_ACTIONS.has(a) && !INTERNAL_ONLY.has(a));
		assert.deepEqual(unmapped, []);
		assert.deepEqual(Object.keys(ACTION_MAP).filter((a) => !CASES[a]), [], "every mapped action has a case");
		for (const [action, rule] of Object.entries(ACTION_MAP)) assert.ok(authz.schema.actions.has(rule.cedar), `${action} → ${rule.cedar} is in the Cedar schema`);
	});

	for (const [action, c] of Object.entries(CASES)) {
		it(`${action}: allows ${c.allow[0]} ${JSON.stringify(c.allow[1])}, refuses ${c.deny[0]} ${JSON.stringify(c.deny[1])}`, async () => {
			const allowed = await decide(action, c.allow);
			assert.equal(allowed.allowed, true, allowed.reason);
			const denied = await decide(action, c.deny);
			assert.equal(denied.allowed, false, `${action} should be refused`);
			// Refused by the policies, not by a mapping the schema does not know.
			assert.match(denied.reason, /^(no policy permits|user ghost is unknown or disabled)$/);
		});
	}

	it("refuses a cross-workspace read that names no workspace before any decision", async () => {
		await assert.rejects(resourcesOf(ACTION_MAP["catalog.search"]!, { params: { workspaces: [] }, principal: "root", lookup }), UnscopedCallError);
		await assert.rejects(resourcesOf(ACTION_MAP["assets.list"]!, { params: {}, principal: "root", lookup }), UnscopedCallError);
	});
});
