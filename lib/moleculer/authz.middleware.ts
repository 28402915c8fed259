import { Errors, type ActionHandler, type ActionSchema, type Context, type Middleware } from "moleculer";
import { ACTION_MAP, decideEach, PUBLIC_ACTIONS, resourcesOf, UnscopedCallError, type ActionRule, type Lookup } from "../../services/authz/action-map";
import type { Decision } from "../../services/authz/policy/decision-point";
import type { ResourceRef } from "../../services/authz/policy/entities";
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

export interface AuthorizeParams {
	principal: string;
	action: string;
	resource: ResourceRef;
	context: Record<string, string>;
	trace_id?: string;
}

/**
 * Enforces authorization on calls that come from outside, on the node that serves the action. The bus itself is
 * authenticated (only platform processes hold its credentials), so a call without `meta.edge` is a trusted internal
 * call and passes. An edge call needs a credential (401 otherwise), a rule in ACTION_MAP (403 otherwise) and an
 * allow from the decision point (403 with the reason and trace id otherwise). Once past, the edge marks are removed
 * from the call's meta: Moleculer copies a context's meta into every call it makes, and those inner calls are the
 * platform's own, trusted.
 */
export function AuthzMiddleware(): Middleware {
	return defineMiddleware({
		name: "Authz",
		localAction(next: ActionHandler, action: ActionSchema) {
			const name = action.name as string;
			if (name.startsWith("$")) return next;
			const isPublic = PUBLIC_ACTIONS.has(name);
			const rule = ACTION_MAP[name];
			return async function authorizeEdgeCall(ctx: Context<Record<string, unknown>, EdgeMeta>) {
				const meta = ctx.meta;
				if (!meta.edge) return next(ctx);
				const auth = meta.auth;
				delete meta.edge;
				delete meta.auth;
				if (isPublic) return next(ctx);
				const caller = await authenticate(ctx, name, auth);
				if (!rule) throw forbidden(name, ctx.requestID, `no policy covers ${name}`);
				const decision = await decide(ctx, name, rule, caller);
				if (decision.decision !== "allow") throw forbidden(name, ctx.requestID, decision.reason, rule.cedar, decision.policies);
				meta.principal = caller.user_id;
				return next(ctx);
			};
		},
	});
}

async function authenticate(ctx: Context, name: string, auth: EdgeMeta["auth"]): Promise<Authenticated> {
	if (!auth?.bearer && !auth?.apiKey) {
		throw new Errors.MoleculerClientError(`${name} needs a credential: send a bearer token or an API key.`, 401, "UNAUTHENTICATED", { action: name });
	}
	return ctx.call<Authenticated, EdgeMeta["auth"]>("authz.authenticate", auth);
}

async function decide(ctx: Context<Record<string, unknown>, EdgeMeta>, name: string, rule: ActionRule, caller: Authenticated): Promise<Decision> {
	const lookup: Lookup = (getAction, params) => ctx.call(getAction, params);
	let resources: ResourceRef[];
	try {
		resources = await resourcesOf(rule, { params: ctx.params ?? {}, principal: caller.user_id, lookup });
	} catch (err) {
		if (err instanceof UnscopedCallError) throw forbidden(name, ctx.requestID, err.message, rule.cedar);
		throw err;
	}
	const context: Record<string, string> = { via: caller.via, ...(ctx.meta.source ? { source: ctx.meta.source } : {}) };
	return decideEach(resources, (resource) =>
		ctx.call<Decision, AuthorizeParams>("authz.authorize", {
			principal: caller.user_id,
			action: rule.cedar,
			resource,
			context,
			...(ctx.requestID ? { trace_id: ctx.requestID } : {}),
		}),
	);
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
