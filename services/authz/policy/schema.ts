/**
 * The platform's Cedar schema (schemas/authz/savassan.cedarschema) and the action catalog read from it, so the
 * actions, their families and their domains are written down once.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SCHEMAS_DIR } from "../../../lib/paths";
import { cedar, NAMESPACE } from "./cedar";

export const SCHEMA_PATH = join(SCHEMAS_DIR, "authz", "savassan.cedarschema");

export const FAMILIES = ["read", "create", "write", "admin"] as const;

export interface ActionInfo {
	id: string;
	/** The groups it is a member of (a family and a domain), as Cedar action ids. */
	parents: string[];
	/** Its domain: "runs", "datasets", ...; policies are sliced by it. */
	domain: string;
	resourceTypes: string[];
}

export interface AuthzSchema {
	text: string;
	actions: Map<string, ActionInfo>;
	/** Action groups (families and domains) → the domains they cover. */
	groups: Map<string, string[]>;
	domains: string[];
}

export function loadSchema(path = SCHEMA_PATH): AuthzSchema {
	const text = readFileSync(path, "utf8");
	const parsed = cedar.schemaToJson(text);
	if (parsed.type !== "success") throw new Error(`Cedar schema ${path} does not parse: ${parsed.errors.map((e) => e.message).join("; ")}`);
	const ns = parsed.json[NAMESPACE];
	if (!ns) throw new Error(`Cedar schema ${path} has no namespace ${NAMESPACE}`);
	const actions = new Map<string, ActionInfo>();
	// Groups are the actions others are members of; requests name only the others.
	const groupIds = [...new Set(Object.values(ns.actions).flatMap((a) => (a.memberOf ?? []).map((m) => m.id)))];
	const domains = groupIds.filter((id) => !(FAMILIES as readonly string[]).includes(id));
	for (const [id, a] of Object.entries(ns.actions)) {
		if (groupIds.includes(id)) continue;
		if (!a.appliesTo) throw new Error(`Cedar schema ${path}: action ${id} applies to nothing`);
		const parents = (a.memberOf ?? []).map((m) => m.id);
		const domain = parents.find((p) => domains.includes(p));
		if (!domain) throw new Error(`Cedar schema ${path}: action ${id} belongs to no domain (one of ${domains.join(", ")})`);
		actions.set(id, { id, parents, domain, resourceTypes: a.appliesTo.resourceTypes });
	}
	const groups = new Map<string, string[]>();
	for (const g of groupIds) groups.set(g, domains.includes(g) ? [g] : [...new Set([...actions.values()].filter((a) => a.parents.includes(g)).map((a) => a.domain))]);
	return { text, actions, groups, domains };
}
