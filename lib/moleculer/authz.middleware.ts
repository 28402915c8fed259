import { Errors, type ActionHandler, type ActionSchema, type Context, type Middleware } from "moleculer";
import { canonicalJson } from "../canonical-json";
import { defineMiddleware } from "./middleware";

/** What an edge (the gateway, the NATS services API) puts in the meta of a call it forwards from outside. */
export interface EdgeMeta {
	/** Set by the edge: the call comes from outside and its caller must prove who it is. */
	edge?: boolean;
	auth?: { bearer?: string; apiKey?: string };
	/** The client's address, for policies and the audit. */
	source?: string;
	/** Set here once the caller is authorized: its user id. */
	principal?: string;
}

/** The authz service's answer to "who holds this credential". */
export interface Authenticated {
	user_id: string;
	via: "password" | "api_key";
}

/** A call from outside, once its caller is known: what the rules decide on. */
export interface EdgeCallInfo {
	params: Record<string, unknown>;
	/** The authenticated caller's user id. */
	principal: string;
	via: Authenticated["via"];
	source?: string;
	traceId?: string;
	/** A trusted internal call: how the rules read the entity a call names, and reach the decision point. */
	call<T, P = Record<string, unknown>>(action: string, params: P): Promise<T>;
}

export interface EdgeVerdict {
	allowed: boolean;
	reason: string;
	/** The policy action the call was decided as, and the determining policies. */
	cedar?: string;
	policies?: string[];
}

/** What the middleware is told about the platform's actions (services/authz/edge-rules.ts). */
export interface EdgeRules {
	/** Callable without a credential (signing in). */
	isPublic(action: string): boolean;
	/** The verdict on an authenticated call; undefined when no rule covers the action (then it is refused). */
	decide(action: string, call: EdgeCallInfo): Promise<EdgeVerdict> | undefined;
}

/**
 * Enforces authorization on calls that come from outside, on the node that serves the action. The bus itself is
 * authenticated (only platform processes hold its credentials), so a call without `meta.edge` is a trusted internal
 * call and passes. An edge call needs a credential (401 otherwise), a rule in ACTION_MAP (403 otherwise) and an
 * allow from the decision point (403 with the reason and trace id otherwise). Once past, the edge marks are removed
 * from the call's meta: Moleculer copies a context's meta into every call it makes, and those inner calls are the
 * platform's own, trusted.
 */
export function AuthzMiddleware(rules: EdgeRules): Middleware {
	return defineMiddleware({
		name: "Authz",
		localAction(next: ActionHandler, action: ActionSchema) {
			const name = action.name as string;
			if (name.startsWith("$")) return next;
			const isPublic = rules.isPublic(name);
			return async function authorizeEdgeCall(ctx: Context<Record<string, unknown>, EdgeMeta>) {
				const meta = ctx.meta;
				if (!meta.edge) return next(ctx);
				const auth = meta.auth;
				delete meta.edge;
				delete meta.auth;
				if (isPublic) return next(ctx);
				const caller = await authenticate(ctx, name, auth);
				// What the rules read to decide (an entity named by id, through its own `get`). When the call is that
				// very read, its answer is the one already read: the store is not asked twice.
				const reads = new Map<string, unknown>();
				const verdict = rules.decide(name, {
					params: ctx.params ?? {},
					principal: caller.user_id,
					via: caller.via,
					...(meta.source ? { source: meta.source } : {}),
					...(ctx.requestID ? { traceId: ctx.requestID } : {}),
					call: async <T, P>(action: string, params: P) => {
						const result = await ctx.call<T, P>(action, params);
						reads.set(readKey(action, params), result);
						return result;
					},
				});
				if (!verdict) throw forbidden(name, ctx.requestID, `no policy covers ${name}`);
				const { allowed, reason, cedar, policies } = await verdict;
				if (!allowed) throw forbidden(name, ctx.requestID, reason, cedar, policies);
				meta.principal = caller.user_id;
				return reads.get(readKey(name, ctx.params ?? {})) ?? next(ctx);
			};
		},
	});
}

/** An action and its params as one key, whatever the order of the params' fields. */
const readKey = (action: string, params: unknown): string => `${action} ${canonicalJson(params)}`;

async function authenticate(ctx: Context, name: string, auth: EdgeMeta["auth"]): Promise<Authenticated> {
	if (!auth?.bearer && !auth?.apiKey) {
		throw new Errors.MoleculerClientError(`${name} needs a credential: send a bearer token or an API key.`, 401, "UNAUTHENTICATED", { action: name });
	}
	return ctx.call<Authenticated, EdgeMeta["auth"]>("authz.authenticate", auth);
}

function forbidden(name: string, traceId: string | null, reason: string, cedar?: string, policies?: string[]): Errors.MoleculerClientError {
	return new Errors.MoleculerClientError(`${name} is not allowed: ${reason} (trace ${traceId}).`, 403, "FORBIDDEN", {
		action: name,
		...(cedar ? { cedar_action: cedar } : {}),
		reason,
		...(policies ? { policies } : {}),
		trace_id: traceId,
	});
}
