/**
 * The audit log on the AUDIT stream: each record is published to `audit.authz.<kind>` with its id as the
 * de-duplication id (a retried publish is stored once); a query reads the stream back and filters with the pure
 * `queryAudit`. The domain appends synchronously, so publishes run in the background and `flush` waits for them:
 * the service flushes before answering, so what an action did is in the stream when the caller hears back.
 */
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { AckedPublisher } from "../../../events/acked-publisher";
import { HEADERS } from "../../../events/headers";
import { readStoredMessages } from "../../../events/stream-reader";
import { STREAMS } from "../../../events/streams";
import { subjects } from "../../../events/subjects";
import { queryAudit, type AuditQuery, type AuditRecord, type AuditSink } from "./audit";

export const AUDIT_CONTEXT = "authz";

const ATTEMPTS = 5;
const RETRY_BASE_MS = 100;

export class StreamAuditLog implements AuditSink {
	private readonly pending = new Set<Promise<void>>();

	constructor(
		private readonly js: JetStreamClient,
		private readonly acked: AckedPublisher,
		/** Told about a record that could not be stored after every retry (its id, never its content). */
		private readonly lost: (recordId: string, err: Error) => void,
	) {}

	append(record: AuditRecord): void {
		const p = this.publish(record).catch((err: Error) => this.lost(record.id, err));
		this.pending.add(p);
		void p.finally(() => this.pending.delete(p));
	}

	/** Resolves once every record appended so far is stored (or given up on). */
	async flush(): Promise<void> {
		await Promise.all([...this.pending]);
	}

	/** Matching records, newest first; `from` starts the read at that time instead of the stream's beginning. */
	async query(q: AuditQuery): Promise<AuditRecord[]> {
		await this.flush();
		const records: AuditRecord[] = [];
		const since = q.from !== undefined ? new Date(q.from) : undefined;
		await readStoredMessages(
			this.js,
			STREAMS.audit.name,
			{ filter: q.kind ? subjects.audit(AUDIT_CONTEXT, q.kind) : subjects.auditOfContext(AUDIT_CONTEXT), ...(since ? { since } : {}) },
			(m) => {
				const r = parsed(m);
				if (r) records.push(r);
			},
		);
		return queryAudit(records, q);
	}

	private async publish(record: AuditRecord): Promise<void> {
		const h = natsHeaders();
		h.set(HEADERS.msgId, record.id);
		const subject = subjects.audit(AUDIT_CONTEXT, record.kind);
		const data = JSON.stringify(record);
		for (let attempt = 1; ; attempt++) {
			try {
				await this.acked.publish(subject, data, h);
				return;
			} catch (err) {
				if (attempt >= ATTEMPTS) throw err;
				await new Promise((r) => setTimeout(r, RETRY_BASE_MS * 2 ** (attempt - 1)));
			}
		}
	}
}

/** A stored record; one that is not JSON (nothing but this service publishes here) is skipped, not fatal. */
function parsed(m: JsMsg): AuditRecord | undefined {
	try {
		return m.json<AuditRecord>();
	} catch {
		return undefined;
	}
}
