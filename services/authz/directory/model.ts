/** The directory: who is who, who belongs where, and who holds which role in which workspace. */

export interface User {
	id: string;
	name: string;
	email?: string;
	groups: string[];
	department?: string;
	disabled?: boolean;
}

export interface Group {
	id: string;
	name: string;
	department?: string;
}

/** Departments form a tree through `parent`. */
export interface Department {
	id: string;
	name: string;
	parent?: string;
}

export interface Workspace {
	id: string;
	name: string;
}

export interface Role {
	id: string;
	description: string;
}

/** Admin: everything; Editor: reads, creates, and changes what they own; Viewer: reads. */
export const SYSTEM_ROLES: readonly Role[] = [
	{ id: "admin", description: "everything, including authorization administration, in its scope" },
	{ id: "editor", description: "reads everything and creates, changes and deletes the resources it owns" },
	{ id: "viewer", description: "reads everything, changes nothing" },
];

/** The scope of a platform-wide binding; never a workspace id. */
export const PLATFORM = "*";

export type SubjectKind = "user" | "group" | "department";

export interface RoleBinding {
	subject: { kind: SubjectKind; id: string };
	role: string;
	/** A workspace id, or PLATFORM. */
	scope: string;
}

/** Everything the decision point needs about one user, resolved through groups and departments. */
export interface Principal {
	user: User;
	groups: Group[];
	/** The user's and its groups' departments with all their ancestors, each once. */
	departments: Department[];
	platformRoles: Set<string>;
	/** Workspace id → roles held there. */
	workspaceRoles: Map<string, Set<string>>;
	/** Changes whenever anything above may have changed; part of every cache key. */
	version: string;
}

/** Who asked for a change and under which trace, for the audit record. */
export interface ChangeMeta {
	actor: string;
	trace_id?: string;
}
