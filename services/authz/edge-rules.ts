import type { EdgeCallInfo, EdgeRules, EdgeVerdict } from "../../lib/moleculer/authz.middleware";
import { ACTION_MAP, decideEach, PUBLIC_ACTIONS, resourcesOf, UnscopedCallError } from "./action-map";
import type { Decision } from "./policy/decision-point";
import type { ResourceRef } from "./policy/entities";

/** What `authz.authorize` takes (the decision point's request, with the call's trace id for the audit). */
export interface AuthorizeParams {
	principal: string;
	action: string;
	resource: ResourceRef;
	context: Record<string, string>;
	trace_id?: string;
}

/**
 * The platform's rules for calls from outside, handed to AuthzMiddleware by the composition root: which actions are
 * public, and the decision on the others — the action's resources (read through `lookup` where named by id), each
 * decided by the authz service.
 */
export const EDGE_RULES: EdgeRules = {
	isPublic: (action) => PUBLIC_ACTIONS.has(action),
	decide(action, call) {
		const rule = ACTION_MAP[action];
		return rule && decideWithRule(rule.cedar, action, call, (resource) => call.call<Decision, AuthorizeParams>("authz.authorize", authorizeParams(rule.cedar, resource, call)));
	},
};

async function decideWithRule(cedar: string, action: string, call: EdgeCallInfo, authorize: (resource: ResourceRef) => Promise<Decision>): Promise<EdgeVerdict> {
	let resources: ResourceRef[];
	try {
		resources = await resourcesOf(ACTION_MAP[action]!, { params: call.params, principal: call.principal, lookup: call.call });
	} catch (err) {
		if (err instanceof UnscopedCallError) return { allowed: false, reason: err.message, cedar };
		throw err;
	}
	const decision = await decideEach(resources, authorize);
	return { allowed: decision.decision === "allow", reason: decision.reason, cedar, policies: decision.policies };
}

/** The decision point's request for a caller (its id, how it signed in, where it calls from) on a resource. */
export function authorizeParams(cedar: string, resource: ResourceRef, call: Pick<EdgeCallInfo, "principal" | "via" | "source" | "traceId">): AuthorizeParams {
	const context: Record<string, string> = { via: call.via, ...(call.source ? { source: call.source } : {}) };
	return { principal: call.principal, action: cedar, resource, context, ...(call.traceId ? { trace_id: call.traceId } : {}) };
}
