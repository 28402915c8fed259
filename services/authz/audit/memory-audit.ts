import { queryAudit, type AuditQuery, type AuditRecord, type AuditSink } from "./audit";

/** The audit log in memory, oldest dropped past `limit` (the embedded default; the stream keeps everything). */
export class MemoryAuditLog implements AuditSink {
	private records: AuditRecord[] = [];

	constructor(private readonly limit = 100_000) {}

	append(record: AuditRecord): void {
		this.records.push(record);
		// Trim in chunks so appending stays O(1) amortised.
		if (this.records.length > this.limit * 1.1) this.records = this.records.slice(-this.limit);
	}

	query(q: AuditQuery): AuditRecord[] {
		return queryAudit(this.records, q);
	}

	get size(): number {
		return this.records.length;
	}
}
