/**
 * Directory changes and lookups. Every change is checked, stored, audited with before/after, and bumps the change
 * counters so that the next decision sees it (no stale membership in any cache).
 */
import { auditRecord, type AuditSink } from "../audit/audit";
import { AuthzError } from "../errors";
import { MemoryStore, systemClock, type Clock, type RecordStore } from "../store";
import {
	PLATFORM,
	SYSTEM_ROLES,
	type ChangeMeta,
	type Department,
	type Group,
	type Principal,
	type Role,
	type RoleBinding,
	type User,
	type Workspace,
} from "./model";
import { ChangeVersions } from "./versions";

/** The bindings of one subject, stored under "kind:id" so a principal's bindings are a few direct reads. */
export interface SubjectBindings {
	subject: RoleBinding["subject"];
	grants: Array<{ role: string; scope: string }>;
}

export interface DirectoryStores {
	users: RecordStore<User>;
	groups: RecordStore<Group>;
	departments: RecordStore<Department>;
	workspaces: RecordStore<Workspace>;
	roles: RecordStore<Role>;
	bindings: RecordStore<SubjectBindings>;
}

export function memoryDirectoryStores(): DirectoryStores {
	return {
		users: new MemoryStore(),
		groups: new MemoryStore(),
		departments: new MemoryStore(),
		workspaces: new MemoryStore(),
		roles: new MemoryStore(),
		bindings: new MemoryStore(),
	};
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;
function checkId(what: string, id: string): void {
	if (typeof id !== "string" || !ID.test(id)) throw new AuthzError("invalid", `${what} id "${id}" must be 1-128 letters, digits, ".", "_", "@" or "-".`);
}

export class Directory {
	readonly versions = new ChangeVersions();

	constructor(
		private readonly stores: DirectoryStores,
		private readonly audit: AuditSink,
		private readonly clock: Clock = systemClock,
	) {}

	// --- lookups -------------------------------------------------------------------------------------------

	getUser(id: string): Promise<User | undefined> {
		return this.stores.users.get(id);
	}

	async role(id: string): Promise<Role | undefined> {
		return SYSTEM_ROLES.find((r) => r.id === id) ?? (await this.stores.roles.get(id));
	}

	/** The user with everything it inherits; undefined for an unknown or disabled user. */
	async principal(userId: string): Promise<Principal | undefined> {
		const version = this.versions.principal(userId);
		const user = await this.stores.users.get(userId);
		if (!user || user.disabled) return undefined;
		const groups = (await Promise.all(user.groups.map((g) => this.stores.groups.get(g)))).filter((g): g is Group => !!g);
		const departments = new Map<string, Department>();
		const starts = [user.department, ...groups.map((g) => g.department)];
		for (let id = starts.shift(); starts.length || id !== undefined; id = starts.shift()) {
			// Walk up each start; stop at a department already seen (shared ancestors, or a cycle in bad data).
			for (let cur = id; cur !== undefined && !departments.has(cur); ) {
				const d = await this.stores.departments.get(cur);
				if (!d) break;
				departments.set(cur, d);
				cur = d.parent;
			}
		}
		const subjects = [`user:${user.id}`, ...groups.map((g) => `group:${g.id}`), ...[...departments.keys()].map((d) => `department:${d}`)];
		const platformRoles = new Set<string>();
		const workspaceRoles = new Map<string, Set<string>>();
		for (const sb of await Promise.all(subjects.map((s) => this.stores.bindings.get(s)))) {
			for (const g of sb?.grants ?? []) {
				if (g.scope === PLATFORM) platformRoles.add(g.role);
				else {
					let set = workspaceRoles.get(g.scope);
					if (!set) workspaceRoles.set(g.scope, (set = new Set()));
					set.add(g.role);
				}
			}
		}
		return { user, groups, departments: [...departments.values()], platformRoles, workspaceRoles, version };
	}

	// --- changes -------------------------------------------------------------------------------------------

	async putUser(input: Omit<User, "groups"> & { groups?: string[] }, meta: ChangeMeta): Promise<User> {
		checkId("user", input.id);
		const groups = [...new Set(input.groups ?? [])];
		for (const g of groups) await this.mustExist("group", this.stores.groups, g);
		if (input.department !== undefined) await this.mustExist("department", this.stores.departments, input.department);
		const user: User = { ...input, groups };
		const before = await this.stores.users.get(user.id);
		await this.stores.users.put(user.id, user);
		this.versions.bumpUser(user.id);
		this.changed(meta, "user.put", `User:${user.id}`, before, user);
		return user;
	}

	async deleteUser(id: string, meta: ChangeMeta): Promise<void> {
		const before = await this.mustExist("user", this.stores.users, id);
		await this.stores.users.delete(id);
		await this.stores.bindings.delete(`user:${id}`);
		this.versions.bumpUser(id);
		this.changed(meta, "user.delete", `User:${id}`, before, undefined);
	}

	async addToGroup(userId: string, groupId: string, meta: ChangeMeta): Promise<void> {
		const user = await this.mustExist("user", this.stores.users, userId);
		await this.mustExist("group", this.stores.groups, groupId);
		if (user.groups.includes(groupId)) return;
		await this.replaceUser(user, { ...user, groups: [...user.groups, groupId] }, "user.group.add", meta);
	}

	async removeFromGroup(userId: string, groupId: string, meta: ChangeMeta): Promise<void> {
		const user = await this.mustExist("user", this.stores.users, userId);
		if (!user.groups.includes(groupId)) return;
		await this.replaceUser(user, { ...user, groups: user.groups.filter((g) => g !== groupId) }, "user.group.remove", meta);
	}

	async putGroup(group: Group, meta: ChangeMeta): Promise<Group> {
		checkId("group", group.id);
		if (group.department !== undefined) await this.mustExist("department", this.stores.departments, group.department);
		return this.putShared("group", this.stores.groups, group, meta);
	}

	async deleteGroup(id: string, meta: ChangeMeta): Promise<void> {
		const members = (await this.stores.users.list()).filter((u) => u.groups.includes(id));
		if (members.length) throw new AuthzError("conflict", `Group ${id} still has ${members.length} member(s); remove them first.`);
		await this.deleteShared("group", this.stores.groups, id, meta);
	}

	async putDepartment(dept: Department, meta: ChangeMeta): Promise<Department> {
		checkId("department", dept.id);
		// Moving a department under itself or a descendant would make the tree a loop.
		for (let cur = dept.parent; cur !== undefined; ) {
			if (cur === dept.id) throw new AuthzError("invalid", `Department ${dept.id} cannot be placed under ${dept.parent}: that is inside itself.`);
			cur = (await this.mustExist("department", this.stores.departments, cur)).parent;
		}
		return this.putShared("department", this.stores.departments, dept, meta);
	}

	async deleteDepartment(id: string, meta: ChangeMeta): Promise<void> {
		const children = (await this.stores.departments.list()).filter((d) => d.parent === id);
		const users = (await this.stores.users.list()).filter((u) => u.department === id);
		const groups = (await this.stores.groups.list()).filter((g) => g.department === id);
		if (children.length || users.length || groups.length) throw new AuthzError("conflict", `Department ${id} is not empty; move its departments, groups and users first.`);
		await this.deleteShared("department", this.stores.departments, id, meta);
	}

	async putWorkspace(ws: Workspace, meta: ChangeMeta): Promise<Workspace> {
		checkId("workspace", ws.id);
		const before = await this.stores.workspaces.get(ws.id);
		await this.stores.workspaces.put(ws.id, ws);
		this.changed(meta, "workspace.put", `Workspace:${ws.id}`, before, ws);
		return ws;
	}

	getWorkspace(id: string): Promise<Workspace | undefined> {
		return this.stores.workspaces.get(id);
	}

	async putRole(role: Role, meta: ChangeMeta): Promise<Role> {
		checkId("role", role.id);
		if (SYSTEM_ROLES.some((r) => r.id === role.id)) throw new AuthzError("conflict", `Role ${role.id} is a system role and cannot be changed.`);
		return this.putShared("role", this.stores.roles, role, meta);
	}

	async bind(binding: RoleBinding, meta: ChangeMeta): Promise<void> {
		await this.checkBinding(binding);
		const key = `${binding.subject.kind}:${binding.subject.id}`;
		const before = await this.stores.bindings.get(key);
		const grants = before?.grants ?? [];
		if (grants.some((g) => g.role === binding.role && g.scope === binding.scope)) return;
		const after: SubjectBindings = { subject: binding.subject, grants: [...grants, { role: binding.role, scope: binding.scope }] };
		await this.storeBindings(key, binding, before, after, "binding.add", meta);
	}

	async unbind(binding: RoleBinding, meta: ChangeMeta): Promise<void> {
		const key = `${binding.subject.kind}:${binding.subject.id}`;
		const before = await this.stores.bindings.get(key);
		if (!before?.grants.some((g) => g.role === binding.role && g.scope === binding.scope)) return;
		const after: SubjectBindings = { subject: binding.subject, grants: before.grants.filter((g) => !(g.role === binding.role && g.scope === binding.scope)) };
		await this.storeBindings(key, binding, before, after, "binding.remove", meta);
	}

	// --- helpers -------------------------------------------------------------------------------------------

	private async checkBinding(b: RoleBinding): Promise<void> {
		const store = b.subject.kind === "user" ? this.stores.users : b.subject.kind === "group" ? this.stores.groups : this.stores.departments;
		await this.mustExist(b.subject.kind, store as RecordStore<unknown>, b.subject.id);
		if (!(await this.role(b.role))) throw new AuthzError("not_found", `Role ${b.role} does not exist.`);
		if (b.scope !== PLATFORM) await this.mustExist("workspace", this.stores.workspaces, b.scope);
	}

	private async storeBindings(key: string, b: RoleBinding, before: SubjectBindings | undefined, after: SubjectBindings, action: string, meta: ChangeMeta): Promise<void> {
		await this.stores.bindings.put(key, after);
		if (b.subject.kind === "user") this.versions.bumpUser(b.subject.id);
		else this.versions.bumpAll();
		this.changed(meta, action, `Binding:${key}`, before, after, b.scope === PLATFORM ? undefined : b.scope);
	}

	private async replaceUser(before: User, after: User, action: string, meta: ChangeMeta): Promise<void> {
		await this.stores.users.put(after.id, after);
		this.versions.bumpUser(after.id);
		this.changed(meta, action, `User:${after.id}`, before, after);
	}

	/** Groups, departments and roles reach many users at once: a change makes every cached decision stale. */
	private async putShared<T extends { id: string }>(kind: string, store: RecordStore<T>, value: T, meta: ChangeMeta): Promise<T> {
		const before = await store.get(value.id);
		await store.put(value.id, value);
		this.versions.bumpAll();
		this.changed(meta, `${kind}.put`, `${capitalise(kind)}:${value.id}`, before, value);
		return value;
	}

	private async deleteShared<T>(kind: string, store: RecordStore<T>, id: string, meta: ChangeMeta): Promise<void> {
		const before = await this.mustExist(kind, store, id);
		await store.delete(id);
		await this.stores.bindings.delete(`${kind}:${id}`);
		this.versions.bumpAll();
		this.changed(meta, `${kind}.delete`, `${capitalise(kind)}:${id}`, before, undefined);
	}

	private async mustExist<T>(kind: string, store: RecordStore<T>, id: string): Promise<T> {
		const v = await store.get(id);
		if (v === undefined) throw new AuthzError("not_found", `${capitalise(kind)} ${id} does not exist.`);
		return v;
	}

	private changed(meta: ChangeMeta, action: string, resource: string, before: unknown, after: unknown, workspace?: string): void {
		this.audit.append(
			auditRecord({ kind: "change", actor: meta.actor, action, resource, workspace, result: "success", reason: `${action} by ${meta.actor}`, before, after, trace_id: meta.trace_id }, new Date(this.clock())),
		);
	}
}

function capitalise(s: string): string {
	return s[0]!.toUpperCase() + s.slice(1);
}
