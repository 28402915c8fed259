/**
 * The custom policies in memory, indexed by scope (a workspace or "*") and domain, so a decision evaluates only
 * the slice that can apply: the system policies, the platform-wide ones and its workspace's, for its domain.
 * A workspace-scoped policy is never evaluated for another workspace's resources: tenancy by construction.
 */
import { PLATFORM } from "../directory/model";
import { SYSTEM_POLICIES } from "./system-policies";

export interface StoredPolicy {
	id: string;
	/** A workspace id, or "*" for the whole platform. */
	scope: string;
	text: string;
	description?: string;
	/** Domains whose actions it can match (["*"]: all); worked out on save. */
	domains: string[];
	updated_at: string;
	updated_by: string;
}

/** A change not yet saved, for dry-runs against a draft policy set. */
export type DraftChange = { put: StoredPolicy } | { delete: string };

export interface PolicyChange {
	scope: string;
	domains: string[];
}

export class PolicyIndex {
	private readonly byId = new Map<string, StoredPolicy>();
	private epochValue = 0;
	private readonly listeners: Array<(c: PolicyChange) => void> = [];

	get epoch(): number {
		return this.epochValue;
	}

	get(id: string): StoredPolicy | undefined {
		return this.byId.get(id);
	}

	list(scope?: string): StoredPolicy[] {
		return [...this.byId.values()].filter((p) => scope === undefined || p.scope === scope);
	}

	upsert(p: StoredPolicy): void {
		const old = this.byId.get(p.id);
		this.byId.set(p.id, p);
		if (old) this.changed(old);
		this.changed(p);
	}

	remove(id: string): void {
		const old = this.byId.get(id);
		if (!old) return;
		this.byId.delete(id);
		this.changed(old);
	}

	onChange(listener: (c: PolicyChange) => void): void {
		this.listeners.push(listener);
	}

	/** The policies a request on `workspace` in `domain` must see: id → text. */
	slice(workspace: string, domain: string, draft: readonly DraftChange[] = []): Record<string, string> {
		const out: Record<string, string> = { ...SYSTEM_POLICIES };
		const applies = (p: StoredPolicy) => (p.scope === PLATFORM || p.scope === workspace) && (p.domains.includes("*") || p.domains.includes(domain));
		// Linear in the number of custom policies: fine here, since slices are built once and preparsed (see slice-cache).
		for (const p of this.byId.values()) if (applies(p)) out[p.id] = p.text;
		for (const c of draft) {
			if ("delete" in c) delete out[c.delete];
			else {
				delete out[c.put.id];
				if (applies(c.put)) out[c.put.id] = c.put.text;
			}
		}
		return out;
	}

	private changed(p: StoredPolicy): void {
		this.epochValue++;
		for (const l of this.listeners) l({ scope: p.scope, domains: p.domains });
	}
}
