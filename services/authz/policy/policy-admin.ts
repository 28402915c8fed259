/**
 * Saving and deleting custom policies: validated against the schema first (a bad policy is refused with line and
 * reason), then stored, indexed for decisions and audited with before/after.
 */
import { auditRecord, type AuditSink } from "../audit/audit";
import type { ChangeMeta } from "../directory/model";
import { PLATFORM } from "../directory/model";
import { AuthzError } from "../errors";
import { systemClock, type Clock, type RecordStore } from "../store";
import type { PolicyIndex, StoredPolicy } from "./policy-index";
import type { AuthzSchema } from "./schema";
import { isSystemPolicy } from "./system-policies";
import { checkPolicy } from "./validation";

export interface PolicyInput {
	id: string;
	scope: string;
	text: string;
	description?: string;
}

const POLICY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class PolicyAdmin {
	constructor(
		private readonly schema: AuthzSchema,
		private readonly store: RecordStore<StoredPolicy>,
		private readonly index: PolicyIndex,
		private readonly audit: AuditSink,
		/** Whether a workspace exists, so a policy cannot be scoped to a typo. */
		private readonly workspaceExists: (id: string) => Promise<boolean>,
		private readonly clock: Clock = systemClock,
	) {}

	/** Fills the index from the store; call once at start. */
	async load(): Promise<void> {
		for (const p of await this.store.list()) this.index.upsert(p);
	}

	/** The policy as it would be stored, or an AuthzError listing every problem with its line. */
	async prepare(input: PolicyInput, meta: ChangeMeta): Promise<StoredPolicy> {
		if (!POLICY_ID.test(input.id) || isSystemPolicy(input.id)) throw new AuthzError("invalid", `Policy id "${input.id}" must be 1-128 letters, digits, ".", "_" or "-" and cannot start with "system:".`);
		if (input.scope !== PLATFORM && !(await this.workspaceExists(input.scope))) throw new AuthzError("not_found", `Workspace ${input.scope} does not exist.`);
		const { problems, domains } = checkPolicy(this.schema, input.id, input.text);
		if (problems.length) {
			const list = problems.map((p) => `line ${p.line}, column ${p.column}: ${p.message}`).join("; ");
			throw new AuthzError("invalid", `Policy ${input.id} is not valid: ${list}.`, problems);
		}
		return { ...input, domains, updated_at: new Date(this.clock()).toISOString(), updated_by: meta.actor };
	}

	async save(input: PolicyInput, meta: ChangeMeta): Promise<StoredPolicy> {
		const policy = await this.prepare(input, meta);
		const before = await this.store.get(policy.id);
		await this.store.put(policy.id, policy);
		this.index.upsert(policy);
		this.changed(meta, "policy.put", policy.id, policy.scope, before, policy);
		return policy;
	}

	async delete(id: string, meta: ChangeMeta): Promise<void> {
		const before = await this.store.get(id);
		if (!before) throw new AuthzError("not_found", `Policy ${id} does not exist.`);
		await this.store.delete(id);
		this.index.remove(id);
		this.changed(meta, "policy.delete", id, before.scope, before, undefined);
	}

	private changed(meta: ChangeMeta, action: string, id: string, scope: string, before: unknown, after: unknown): void {
		const workspace = scope === PLATFORM ? undefined : scope;
		this.audit.append(auditRecord({ kind: "change", actor: meta.actor, action, resource: `Policy:${id}`, workspace, result: "success", reason: `${action} by ${meta.actor}`, before, after, trace_id: meta.trace_id }, new Date(this.clock())));
	}
}
