/**
 * Audit records: the pure part (record type, query, JSON-lines export). Where records are kept is an AuditSink;
 * the in-memory one is in memory-audit.ts, the stream-backed one comes with the service.
 */
import { randomUUID } from "node:crypto";

export type AuditKind = "decision" | "change" | "login" | "token";
export type AuditResult = "allow" | "deny" | "success" | "failure";

export interface AuditRecord {
	id: string;
	/** ISO time. */
	at: string;
	kind: AuditKind;
	/** Who: a user id, "anonymous" for failed logins of unknown accounts, "system" for the platform itself. */
	actor: string;
	/** What: a Cedar action for decisions, e.g. "policy.put", "login", "token.refresh" otherwise. */
	action: string;
	/** The resource decided on or changed, as "Type:id" (e.g. "Run:r-1", "Policy:p-7"). */
	resource?: string;
	workspace?: string;
	result: AuditResult;
	/** Why, in a sentence: the determining policies, a lock-out, a reused refresh token. */
	reason: string;
	/** Determining policy ids of a decision. */
	policies?: string[];
	/** For changes: the state before and after (undefined when created / deleted). Never holds secrets. */
	before?: unknown;
	after?: unknown;
	source?: string;
	trace_id: string;
}

export type AuditEntry = Omit<AuditRecord, "id" | "at" | "trace_id"> & { trace_id?: string };

export interface AuditSink {
	append(record: AuditRecord): void;
}

/** Completes an entry with id, time and a trace id (a fresh one when the caller has none). */
export function auditRecord(entry: AuditEntry, now: Date): AuditRecord {
	return { id: randomUUID(), at: now.toISOString(), ...entry, trace_id: entry.trace_id ?? randomUUID() };
}

export interface AuditQuery {
	/** Inclusive ISO bounds. */
	from?: string;
	to?: string;
	actor?: string;
	result?: AuditResult;
	kind?: AuditKind;
	/** Exact "Type:id", or a "Type:" prefix. */
	resource?: string;
	workspace?: string;
	trace_id?: string;
	/** Newest first, at most this many. */
	limit?: number;
}

export function matchesAudit(r: AuditRecord, q: AuditQuery): boolean {
	if (q.from !== undefined && r.at < q.from) return false;
	if (q.to !== undefined && r.at > q.to) return false;
	if (q.actor !== undefined && r.actor !== q.actor) return false;
	if (q.result !== undefined && r.result !== q.result) return false;
	if (q.kind !== undefined && r.kind !== q.kind) return false;
	if (q.workspace !== undefined && r.workspace !== q.workspace) return false;
	if (q.trace_id !== undefined && r.trace_id !== q.trace_id) return false;
	if (q.resource !== undefined) {
		if (r.resource === undefined) return false;
		if (q.resource.endsWith(":") ? !r.resource.startsWith(q.resource) : r.resource !== q.resource) return false;
	}
	return true;
}

/** Records in time order (as appended) → the matching ones, newest first. */
export function queryAudit(records: readonly AuditRecord[], q: AuditQuery): AuditRecord[] {
	const out: AuditRecord[] = [];
	const limit = q.limit ?? Infinity;
	for (let i = records.length - 1; i >= 0 && out.length < limit; i--) if (matchesAudit(records[i]!, q)) out.push(records[i]!);
	return out;
}

export function toJsonLines(records: Iterable<AuditRecord>): string {
	let out = "";
	for (const r of records) out += JSON.stringify(r) + "\n";
	return out;
}
