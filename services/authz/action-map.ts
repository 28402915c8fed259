/**
 * Which Cedar action guards which Moleculer action, and what the resource is. A resource named by id only (a run,
 * a parse) is read through its own `get` action first, so the decision knows its workspace and owner: the params
 * alone cannot be trusted to name the right workspace. A Moleculer action missing here is denied to edge callers.
 */
import type { ResourceRef } from "./policy/entities";

/** Reads an entity through an action (an internal, trusted call). */
export type Lookup = (action: string, params: { id: string }) => Promise<{ workspace: string; owner?: string }>;

export interface ResourceInput {
	params: Record<string, unknown>;
	/** The authenticated caller's user id. */
	principal: string;
	lookup: Lookup;
}

export interface ActionRule {
	/** A Cedar action id of schemas/authz/savassan.cedarschema. */
	cedar: string;
	resource(input: ResourceInput): Promise<ResourceRef>;
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

/** The workspace the params name. */
const workspace = (): ActionRule["resource"] => async ({ params }) => {
	const id = param(params, "workspace");
	return { type: "Workspace", id, workspace: id };
};

/** A stored entity, read through `getAction` by the params' id. */
const stored = (type: string, getAction: string): ActionRule["resource"] => async ({ params, lookup }) => {
	const id = param(params, "id");
	const found = await lookup(getAction, { id });
	return { type, id, workspace: found.workspace, ...(found.owner !== undefined ? { owner: found.owner } : {}) };
};

/** The workspace a stored entity lives in (creating something from it, e.g. submitting a parse). */
const workspaceOf = (getAction: string): ActionRule["resource"] => async ({ params, lookup }) => {
	const { workspace: ws } = await lookup(getAction, { id: param(params, "id") });
	return { type: "Workspace", id: ws, workspace: ws };
};

/** An authz object of `kind`; in the workspace `scopeParam` names when given, else platform-wide. */
const authzObject = (kind: string, scopeParam?: string): ActionRule["resource"] => async ({ params }) => {
	const scope = scopeParam && typeof params[scopeParam] === "string" ? (params[scopeParam] as string) : "*";
	return { type: "AuthzObject", id: `${kind}:${scope}`, workspace: scope, attrs: { kind } };
};

/** The caller's own API keys (the system policy lets everyone manage theirs). */
const ownKeys = (): ActionRule["resource"] => async ({ principal }) => ({ type: "AuthzObject", id: `api-keys:${principal}`, workspace: "*", owner: principal, attrs: { kind: "api_key" } });

/** Callable from an edge without a credential: this is how one gets one. */
export const PUBLIC_ACTIONS: ReadonlySet<string> = new Set(["authz.login", "authz.refresh", "authz.logout"]);

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

	"authz.apiKeys.create": { cedar: "authz.keys.manage", resource: ownKeys() },
	"authz.apiKeys.list": { cedar: "authz.keys.manage", resource: ownKeys() },
	"authz.apiKeys.revoke": { cedar: "authz.keys.manage", resource: ownKeys() },
	"authz.users.put": { cedar: "authz.directory.write", resource: authzObject("user") },
	"authz.users.remove": { cedar: "authz.directory.write", resource: authzObject("user") },
	"authz.groups.put": { cedar: "authz.directory.write", resource: authzObject("group") },
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
