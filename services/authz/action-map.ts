/**
 * Which Cedar action guards which Moleculer action, and what the resource is. A resource named by id only (a run,
 * a parse) is read through its own `get` action first, so the decision knows its workspace and owner: the params
 * alone cannot be trusted to name the right workspace. A Moleculer action missing here is denied to edge callers.
 */
import { PLATFORM } from "./directory/model";
import type { Decision } from "./policy/decision-point";
import type { ResourceRef } from "./policy/entities";

/** Calls an action (an internal, trusted call): how an entity named by id is read. */
export type Lookup = <T>(action: string, params: Record<string, unknown>) => Promise<T>;

export interface ResourceInput {
	params: Record<string, unknown>;
	/** The authenticated caller's user id. */
	principal: string;
	lookup: Lookup;
}

export interface ActionRule {
	/** A Cedar action id of schemas/authz/savassan.cedarschema. */
	cedar: string;
	/** What the call is about; several resources (a search over several workspaces) must each be allowed. */
	resource(input: ResourceInput): Promise<ResourceRef | ResourceRef[]>;
}

/** What a stored entity's `get` answers with, as far as a decision cares. */
interface Scoped {
	workspace: string;
	owner?: string;
}

/** The resources a call is about, as a list. */
export async function resourcesOf(rule: ActionRule, input: ResourceInput): Promise<ResourceRef[]> {
	return [await rule.resource(input)].flat();
}

/** Every resource must be allowed: the first refusal is the answer. */
export async function decideEach(resources: ResourceRef[], decideOne: (resource: ResourceRef) => Promise<Decision>): Promise<Decision> {
	let decision: Decision | undefined;
	for (const resource of resources) {
		decision = await decideOne(resource);
		if (decision.decision !== "allow") return decision;
	}
	if (!decision) throw new UnscopedCallError("the call names no resource to authorize");
	return decision;
}

/** The caller must name a workspace for the decision to be about one. */
export class UnscopedCallError extends Error {
	override name = "UnscopedCallError";
}

function param(params: Record<string, unknown>, name: string): string {
	const v = params[name];
	if (typeof v !== "string" || !v) throw new UnscopedCallError(`"${name}" is required for this call to be authorized`);
	return v;
}

const asWorkspace = (id: string): ResourceRef => ({ type: "Workspace", id, workspace: id });

/** The workspace the params name. */
const workspace = (): ActionRule["resource"] => async ({ params }) => asWorkspace(param(params, "workspace"));

/** The workspace the params name, or the whole platform when they name none (its admins only, usually). */
const workspaceOrPlatform = (): ActionRule["resource"] => async ({ params }) => asWorkspace(typeof params.workspace === "string" ? params.workspace : PLATFORM);

/** Every workspace of the `workspaces` list: reading across workspaces needs the right in each. */
const everyWorkspace = (): ActionRule["resource"] => async ({ params }) => {
	const list = params.workspaces;
	if (!Array.isArray(list) || !list.length || !list.every((w) => typeof w === "string" && w)) throw new UnscopedCallError(`"workspaces" must name at least one workspace for this call to be authorized`);
	return (list as string[]).map(asWorkspace);
};

/** The platform itself: only platform-wide roles reach it. */
const platform = (): ActionRule["resource"] => async () => asWorkspace(PLATFORM);

/**
 * A stored entity of Cedar `type`, read through `getAction` with the id the params carry in `idParam`; `extra` are
 * further params of the get (e.g. the catalog's `kind`).
 */
const stored =
	(type: string, getAction: string, idParam = "id", extra: Record<string, unknown> = {}): ActionRule["resource"] =>
	async ({ params, lookup }) => {
		const id = param(params, idParam);
		const found = await lookup<Scoped>(getAction, { ...extra, id });
		return { type, id, workspace: found.workspace, ...(found.owner !== undefined ? { owner: found.owner } : {}) };
	};

/** The workspace a stored entity lives in (creating something from it, e.g. submitting a parse). */
const workspaceOf = (getAction: string): ActionRule["resource"] => async ({ params, lookup }) => asWorkspace((await lookup<Scoped>(getAction, { id: param(params, "id") })).workspace);

/** A catalog entry of `kind` (the param when absent), read through catalog.get. */
const catalogEntry = (type: string, idParam: string, kind?: string): ActionRule["resource"] => async (input) => stored(type, "catalog.get", idParam, { kind: kind ?? param(input.params, "kind") })(input);

/** An alert rule's workspace, or the platform for a rule of every workspace (or one that does not exist). */
const alertRule = (): ActionRule["resource"] => async ({ params, lookup }) => {
	const id = param(params, "id");
	const { rules } = await lookup<{ rules: Array<{ id: string; workspace?: string }> }>("telemetry.rules.list", {});
	return asWorkspace(rules.find((r) => r.id === id)?.workspace ?? PLATFORM);
};

/** Alerts of one run are read on the run; alerts of every run are a platform-wide read. */
const alertsScope = (): ActionRule["resource"] => async (input) => (typeof input.params.run_id === "string" ? stored("Run", "execution.get", "run_id")(input) : asWorkspace(PLATFORM));

/** An authz object of `kind`; in the workspace `scopeParam` names when given, else platform-wide. */
const authzObject = (kind: string, scopeParam?: string): ActionRule["resource"] => async ({ params }) => {
	const scope = scopeParam && typeof params[scopeParam] === "string" ? (params[scopeParam] as string) : PLATFORM;
	return { type: "AuthzObject", id: `${kind}:${scope}`, workspace: scope, attrs: { kind } };
};

/** The caller's own API keys (the system policy lets everyone manage theirs). */
const ownKeys = (): ActionRule["resource"] => async ({ principal }) => ({ type: "AuthzObject", id: `api-keys:${principal}`, workspace: PLATFORM, owner: principal, attrs: { kind: "api_key" } });

/** Callable from an edge without a credential: this is how one gets one. */
export const PUBLIC_ACTIONS: ReadonlySet<string> = new Set(["authz.login", "authz.refresh", "authz.logout", "authz.oidc.begin", "authz.oidc.complete"]);

export const ACTION_MAP: Readonly<Record<string, ActionRule>> = {
	"execution.submit": { cedar: "runs.submit", resource: workspace() },
	"execution.list": { cedar: "runs.list", resource: workspace() },
	"execution.get": { cedar: "runs.read", resource: stored("Run", "execution.get") },
	"execution.logs": { cedar: "runs.logs", resource: stored("Run", "execution.get") },
	"execution.cancel": { cedar: "runs.cancel", resource: stored("Run", "execution.get") },
	"execution.retry": { cedar: "runs.retry", resource: stored("Run", "execution.get") },

	"intent.parse": { cedar: "intents.parse", resource: workspace() },
	"intent.list": { cedar: "intents.list", resource: workspace() },
	"intent.get": { cedar: "intents.read", resource: stored("Intent", "intent.get") },
	"intent.plan": { cedar: "intents.read", resource: stored("Intent", "intent.get") },
	"intent.submit": { cedar: "intents.submit", resource: workspaceOf("intent.get") },

	// Registrations name their workspace; the catalog refuses a version or endpoint outside its parent's.
	"catalog.datasets.register": { cedar: "datasets.register", resource: workspace() },
	"catalog.datasets.versions.register": { cedar: "datasets.register", resource: workspace() },
	"catalog.models.register": { cedar: "models.register", resource: workspace() },
	"catalog.models.versions.register": { cedar: "models.register", resource: workspace() },
	"catalog.endpoints.register": { cedar: "catalog.register", resource: workspace() },
	"catalog.models.promote": { cedar: "models.promote", resource: catalogEntry("Model", "model_id", "model") },
	"catalog.models.rollback": { cedar: "models.rollback", resource: catalogEntry("Model", "model_id", "model") },
	"catalog.get": { cedar: "catalog.read", resource: catalogEntry("CatalogEntry", "id") },
	"catalog.search": { cedar: "catalog.search", resource: everyWorkspace() },
	"catalog.suggest": { cedar: "catalog.search", resource: everyWorkspace() },
	"catalog.lineage.upstream": { cedar: "catalog.lineage", resource: everyWorkspace() },
	"catalog.lineage.downstream": { cedar: "catalog.lineage", resource: everyWorkspace() },
	"catalog.lineage.impact": { cedar: "catalog.lineage", resource: everyWorkspace() },
	"catalog.lineage.export": { cedar: "catalog.lineage", resource: everyWorkspace() },
	"catalog.rebuild": { cedar: "catalog.rebuild", resource: platform() },
	"catalog.check": { cedar: "catalog.check", resource: platform() },

	// Assets are stored under their workspace, so the params' workspace is the asset's.
	"assets.requestUpload": { cedar: "assets.upload", resource: workspace() },
	"assets.completeUpload": { cedar: "assets.upload", resource: workspace() },
	"assets.get": { cedar: "assets.read", resource: workspace() },
	"assets.list": { cedar: "assets.read", resource: workspace() },
	"assets.requestDownload": { cedar: "assets.read", resource: workspace() },

	"curation.start": { cedar: "curation.start", resource: workspace() },
	"curation.list": { cedar: "curation.list", resource: workspace() },
	"curation.get": { cedar: "curation.read", resource: stored("CurationJob", "curation.get") },
	// Jobs have no owner: giving feedback creates the curated version in the job's workspace.
	"curation.feedback": { cedar: "curation.feedback", resource: workspaceOf("curation.get") },

	"telemetry.progress": { cedar: "runs.read", resource: stored("Run", "execution.get", "run_id") },
	"telemetry.series": { cedar: "runs.read", resource: stored("Run", "execution.get", "run_id") },
	"telemetry.alerts": { cedar: "alerts.read", resource: alertsScope() },
	// A rule without a workspace watches every workspace: the platform's.
	"telemetry.rules.list": { cedar: "alerts.rules.manage", resource: workspaceOrPlatform() },
	"telemetry.rules.create": { cedar: "alerts.rules.manage", resource: workspaceOrPlatform() },
	"telemetry.rules.delete": { cedar: "alerts.rules.manage", resource: alertRule() },

	"deadletters.list": { cedar: "platform.deadletters.read", resource: platform() },
	"deadletters.get": { cedar: "platform.deadletters.read", resource: platform() },
	"deadletters.stats": { cedar: "platform.deadletters.read", resource: platform() },
	"deadletters.replay": { cedar: "platform.deadletters.replay", resource: platform() },

	"authz.apiKeys.create": { cedar: "authz.keys.manage", resource: ownKeys() },
	"authz.apiKeys.list": { cedar: "authz.keys.manage", resource: ownKeys() },
	"authz.apiKeys.revoke": { cedar: "authz.keys.manage", resource: ownKeys() },
	"authz.users.put": { cedar: "authz.directory.write", resource: authzObject("user") },
	"authz.users.remove": { cedar: "authz.directory.write", resource: authzObject("user") },
	"authz.groups.put": { cedar: "authz.directory.write", resource: authzObject("group") },
	"authz.groups.remove": { cedar: "authz.directory.write", resource: authzObject("group") },
	"authz.departments.put": { cedar: "authz.directory.write", resource: authzObject("department") },
	"authz.departments.remove": { cedar: "authz.directory.write", resource: authzObject("department") },
	"authz.workspaces.put": { cedar: "authz.directory.write", resource: authzObject("workspace") },
	// A workspace's admins may bind roles in their workspace.
	"authz.bindings.add": { cedar: "authz.bindings.write", resource: authzObject("binding", "scope") },
	"authz.bindings.remove": { cedar: "authz.bindings.write", resource: authzObject("binding", "scope") },
	"authz.policies.save": { cedar: "authz.policies.write", resource: authzObject("policy", "workspace") },
	"authz.policies.delete": { cedar: "authz.policies.write", resource: authzObject("policy") },
	"authz.policies.dryRun": { cedar: "authz.dryrun", resource: authzObject("policy") },
	"authz.decide": { cedar: "authz.dryrun", resource: authzObject("decision") },
	"authz.audit.query": { cedar: "authz.audit.read", resource: authzObject("audit") },
	"authz.audit.export": { cedar: "authz.audit.read", resource: authzObject("audit") },
};
