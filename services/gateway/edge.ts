import { randomUUID } from "node:crypto";
import { Errors, type ServiceBroker } from "moleculer";
import type { EdgeMeta } from "../../lib/moleculer/authz.middleware";
import type { ErrorBody } from "./http";

/**
 * What every edge (HTTP API, live WebSocket, NATS services API) shares: how a caller's credential is read, how a
 * call from outside is forwarded (marked as an edge call, so the authz middleware authenticates and decides it on
 * the node that serves the action), and how any failure becomes the one error body.
 */

export type Credential = NonNullable<EdgeMeta["auth"]>;

/**
 * The credential of a request from its headers (`get` reads one, lower-case name, "" when absent):
 * `Authorization: Bearer <jwt>`, `Authorization: ApiKey <key>` or `X-Api-Key: <key>`.
 */
export function credentialOf(get: (name: string) => string): Credential | undefined {
	const authorization = get("authorization").trim();
	const [scheme, value] = authorization.split(/\s+/, 2);
	if (value && /^bearer$/i.test(scheme!)) return { bearer: value };
	if (value && /^apikey$/i.test(scheme!)) return { apiKey: value };
	const apiKey = get("x-api-key").trim();
	return apiKey ? { apiKey } : undefined;
}

/** A fresh trace id for a call that arrives without one. */
export const newTraceId = (): string => randomUUID();

/** What a caller may choose as its trace id (schemas/common.json `traceId`); anything else is ignored. */
const SANE_TRACE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The caller's own trace id when it sent a sane one (so its logs and ours line up), else a fresh one. */
export const traceIdOf = (sent: string | undefined): string => (sent && SANE_TRACE_ID.test(sent) ? sent : newTraceId());

export interface EdgeCall {
	action: string;
	params: Record<string, unknown>;
	credential?: Credential;
	/** Where the call comes from ("http 10.0.0.7", "nats"), for policies and the audit. */
	source: string;
	traceId: string;
}

/** Forwards a call from outside; it is authenticated and decided where the action runs. */
export function edgeCall<T>(broker: ServiceBroker, call: EdgeCall): Promise<T> {
	const meta: EdgeMeta = { edge: true, source: call.source, ...(call.credential ? { auth: call.credential } : {}) };
	return broker.call<T, Record<string, unknown>>(call.action, call.params, { meta, requestID: call.traceId });
}

const CLIENT_STATUSES = new Set([400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 423, 429]);

/**
 * The error body of any failure. Errors the platform raises on purpose (Moleculer errors with a status) keep their
 * status, type and sentence; a service that is not running is 503; a timeout 504; anything else is a 500 whose
 * message says only where to look (the trace id), never the internal message or a stack.
 */
export function toErrorBody(err: unknown, traceId: string): ErrorBody {
	if (err instanceof Errors.ServiceNotFoundError) {
		const action = (err.data as { action?: string } | undefined)?.action ?? "the action";
		return { status: 503, code: "SERVICE_UNAVAILABLE", message: `${action} is not available right now: its service is not running; try again later.`, trace_id: traceId };
	}
	if (err instanceof Errors.RequestTimeoutError) {
		return { status: 504, code: "TIMEOUT", message: "the platform did not answer in time; try again later.", trace_id: traceId };
	}
	if (err instanceof Errors.MoleculerError && (CLIENT_STATUSES.has(err.code) || err.code === 503 || err.code === 507)) {
		const body: ErrorBody = { status: err.code, code: err.type || "ERROR", message: err.message, trace_id: traceId };
		const field = firstField(err.data);
		return field ? { ...body, field } : body;
	}
	return { status: 500, code: "INTERNAL", message: `the platform failed to handle this request; quote trace id ${traceId} to an operator.`, trace_id: traceId };
}

/** The first offending field of a validation error (`data.fields[0].field`), or of an error naming one `data.field`. */
function firstField(data: unknown): string | undefined {
	if (!data || typeof data !== "object") return undefined;
	const { fields, field } = data as { fields?: Array<{ field?: unknown }>; field?: unknown };
	const first = Array.isArray(fields) ? fields[0]?.field : field;
	return typeof first === "string" && first ? first : undefined;
}
