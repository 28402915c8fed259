import { auditRecord, type AuditSink } from "../audit/audit";
import type { Clock } from "../store";

export interface LoginAttempt {
	/** The user id when known, else "anonymous". */
	actor: string;
	via: "password" | "oidc" | "api_key" | "refresh";
	ok: boolean;
	reason: string;
	/** The name tried (never the password). */
	username?: string;
	source?: string;
	trace_id?: string;
}

/** Every login, good or bad, leaves one record. */
export function auditLogin(audit: AuditSink, clock: Clock, a: LoginAttempt): void {
	audit.append(
		auditRecord(
			{
				kind: "login",
				actor: a.actor,
				action: `login.${a.via}`,
				resource: a.username !== undefined ? `Account:${a.username}` : undefined,
				result: a.ok ? "success" : "failure",
				reason: a.reason,
				source: a.source,
				trace_id: a.trace_id,
			},
			new Date(clock()),
		),
	);
}
