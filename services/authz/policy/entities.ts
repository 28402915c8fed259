/** Cedar entities from the directory (the principal and its ancestors) and from a resource reference. */
import type { Principal } from "../directory/model";
import { entityType, type CedarValueJson, type EntityJson } from "./cedar";
import type { ActionInfo } from "./schema";
import { ACTION_TYPE } from "./cedar";

/** What a decision is about: any entity type of the schema, with the workspace it lives in. */
export interface ResourceRef {
	/** A schema entity type without namespace: "Run", "Dataset", "Workspace", "Topic", "AuthzObject", ... */
	type: string;
	id: string;
	/** Its workspace id; "*" for platform-wide objects; a Workspace's own id for a Workspace. */
	workspace: string;
	/** The owning user id, when it has one (Editors change only what they own). */
	owner?: string;
	/** Further attributes the schema declares for the type (e.g. `kind` of an AuthzObject). */
	attrs?: Record<string, CedarValueJson>;
}

const USER = entityType("User");
const uid = (type: string, id: string) => ({ type, id });

/** The user (groups, departments and platform roles as parents; workspace roles as tags) and its ancestors. */
export function principalEntities(p: Principal): EntityJson[] {
	const tags: Record<string, CedarValueJson> = {};
	for (const [ws, roles] of p.workspaceRoles) tags[ws] = [...roles];
	const parents = [
		...p.groups.map((g) => uid(entityType("Group"), g.id)),
		...(p.user.department !== undefined ? [uid(entityType("Department"), p.user.department)] : []),
		...[...p.platformRoles].map((r) => uid(entityType("Role"), r)),
	];
	return [
		{ uid: uid(USER, p.user.id), attrs: { name: p.user.name }, parents, tags },
		...p.groups.map((g) => ({ uid: uid(entityType("Group"), g.id), attrs: {}, parents: g.department !== undefined ? [uid(entityType("Department"), g.department)] : [] })),
		...p.departments.map((d) => ({ uid: uid(entityType("Department"), d.id), attrs: {}, parents: d.parent !== undefined ? [uid(entityType("Department"), d.parent)] : [] })),
		...[...p.platformRoles].map((r) => ({ uid: uid(entityType("Role"), r), attrs: {}, parents: [] })),
	];
}

export function resourceEntities(r: ResourceRef): EntityJson[] {
	if (r.type === "Workspace") return [{ uid: uid(entityType("Workspace"), r.id), attrs: { workspace: r.id, ...r.attrs }, parents: [] }];
	const attrs: Record<string, CedarValueJson> = { ...r.attrs, workspace: r.workspace };
	if (r.owner !== undefined) attrs.owner = { __entity: uid(USER, r.owner) };
	return [
		{ uid: uid(entityType(r.type), r.id), attrs, parents: [uid(entityType("Workspace"), r.workspace)] },
		{ uid: uid(entityType("Workspace"), r.workspace), attrs: { workspace: r.workspace }, parents: [] },
	];
}

export function actionEntity(a: ActionInfo): EntityJson {
	return { uid: uid(ACTION_TYPE, a.id), attrs: {}, parents: a.parents.map((p) => uid(ACTION_TYPE, p)) };
}

/** A key that differs whenever anything Cedar sees of the resource differs. */
export function resourceKey(r: ResourceRef): string {
	return `${r.type}\u0001${r.id}\u0001${r.workspace}\u0001${r.owner ?? ""}${r.attrs ? "\u0001" + JSON.stringify(r.attrs) : ""}`;
}
