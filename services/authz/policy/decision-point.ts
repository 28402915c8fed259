/**
 * The decision point: may this user do this action on this resource? Deny by default; a forbid beats any permit.
 * Every answer names the policies that determined it (or says no policy permits) and any evaluation errors, and
 * is audited. Dry-runs answer the same question without acting, optionally against a draft policy set.
 */
import { auditRecord, type AuditSink } from "../audit/audit";
import type { Directory } from "../directory/directory";
import { systemClock, type Clock } from "../store";
import { ACTION_TYPE, cedar, entityType, type CedarValueJson, type EntityJson, type PolicySet } from "./cedar";
import { BoundedCache } from "./decision-cache";
import { actionEntity, principalEntities, resourceEntities, resourceKey, type ResourceRef } from "./entities";
import type { DraftChange, PolicyIndex } from "./policy-index";
import type { ActionInfo, AuthzSchema } from "./schema";
import { SliceCache } from "./slice-cache";

export interface AuthzRequest {
	/** User id. */
	principal: string;
	/** A Cedar action id of the schema, e.g. "runs.read". */
	action: string;
	resource: ResourceRef;
	/** RequestContext of the schema: what policies may decide on (how the caller authenticated, from where). */
	context?: Record<string, CedarValueJson>;
	trace_id?: string;
}

export interface Decision {
	decision: "allow" | "deny";
	/** The determining policies: the permits of an allow, the forbids of a deny; empty when nothing permits. */
	policies: string[];
	/** "permitted by …", "forbidden by …", "no policy permits", or why the request could not be evaluated. */
	reason: string;
	/** Policies that failed to evaluate (they count as not applying). */
	errors: Array<{ policy: string; message: string }>;
	cached: boolean;
}

export interface DryRun extends Decision {
	/** With a draft: the decision under the saved policies, to compare. */
	current?: Decision;
}

export interface DecisionPointOptions {
	schema: AuthzSchema;
	directory: Directory;
	index: PolicyIndex;
	audit: AuditSink;
	clock?: Clock;
	/** Cached decisions kept at most; default 100,000. */
	cacheSize?: number;
}

const NO_PERMIT = "no policy permits";

export class DecisionPoint {
	private readonly slices: SliceCache;
	private readonly decisions: BoundedCache<Decision>;
	private readonly principals: BoundedCache<{ version: string; entities: EntityJson[] }>;
	private readonly clock: Clock;

	constructor(private readonly o: DecisionPointOptions) {
		this.clock = o.clock ?? systemClock;
		this.slices = new SliceCache(o.index);
		this.decisions = new BoundedCache(o.cacheSize ?? 100_000);
		this.principals = new BoundedCache(o.cacheSize ?? 100_000);
		// Keys already carry the versions; dropping everything on a global change just frees the memory early.
		o.index.onChange(() => this.decisions.clear());
		o.directory.versions.onEpoch(() => (this.decisions.clear(), this.principals.clear()));
	}

	async authorize(req: AuthzRequest): Promise<Decision> {
		const decision = await this.decide(req);
		this.o.audit.append(
			auditRecord(
				{
					kind: "decision",
					actor: req.principal,
					action: req.action,
					resource: `${req.resource.type}:${req.resource.id}`,
					workspace: req.resource.workspace,
					result: decision.decision,
					reason: decision.reason,
					policies: decision.policies,
					source: typeof req.context?.source === "string" ? req.context.source : undefined,
					trace_id: req.trace_id,
				},
				new Date(this.clock()),
			),
		);
		return decision;
	}

	/** Evaluates without caching or auditing; with `draft`, against the saved policies changed by it. */
	async dryRun(req: AuthzRequest, draft?: readonly DraftChange[]): Promise<DryRun> {
		const prepared = await this.prepare(req);
		if ("refused" in prepared) return prepared.refused;
		const { info, entities } = prepared;
		const slice = (d: readonly DraftChange[]) => ({ staticPolicies: this.o.index.slice(req.resource.workspace, info.domain, d) });
		const decision = this.evaluate(req, entities, slice(draft ?? []));
		return draft ? { ...decision, current: this.evaluate(req, entities, slice([])) } : decision;
	}

	private async decide(req: AuthzRequest): Promise<Decision> {
		const version = this.o.directory.versions.principal(req.principal);
		const key = `${req.principal}\u0001${version}\u0001${this.o.index.epoch}\u0001${req.action}\u0001${resourceKey(req.resource)}\u0001${req.context ? JSON.stringify(req.context) : ""}`;
		const hit = this.decisions.get(key);
		if (hit) return hit;
		const prepared = await this.prepare(req);
		if ("refused" in prepared) return prepared.refused;
		const setId = this.slices.ensure(req.resource.workspace, prepared.info.domain);
		const decision = this.evaluate(req, prepared.entities, setId);
		this.decisions.set(key, Object.freeze({ ...decision, cached: true }));
		return decision;
	}

	/** Checks the request against the schema's action catalog and gathers the entities Cedar needs. */
	private async prepare(req: AuthzRequest): Promise<{ refused: Decision } | { info: ActionInfo; entities: EntityJson[] }> {
		const info = this.o.schema.actions.get(req.action);
		if (!info) return { refused: refusal(`action "${req.action}" is not known to authorization; denied by default`) };
		if (!info.resourceTypes.includes(req.resource.type)) return { refused: refusal(`action "${req.action}" does not apply to a ${req.resource.type} (it applies to ${info.resourceTypes.join(", ")})`) };
		const principal = await this.principalEntities(req.principal);
		if (!principal) return { refused: refusal(`user ${req.principal} is unknown or disabled`) };
		return { info, entities: [...principal, ...resourceEntities(req.resource), actionEntity(info)] };
	}

	private async principalEntities(userId: string): Promise<EntityJson[] | undefined> {
		const version = this.o.directory.versions.principal(userId);
		const cached = this.principals.get(userId);
		if (cached?.version === version) return cached.entities;
		const p = await this.o.directory.principal(userId);
		if (!p) return undefined;
		const entities = principalEntities(p);
		this.principals.set(userId, { version: p.version, entities });
		return entities;
	}

	private evaluate(req: AuthzRequest, entities: EntityJson[], policies: string | PolicySet): Decision {
		const call = {
			principal: { type: entityType("User"), id: req.principal },
			action: { type: ACTION_TYPE, id: req.action },
			resource: { type: entityType(req.resource.type), id: req.resource.id },
			context: req.context ?? {},
			entities,
		};
		const answer = typeof policies === "string" ? cedar.statefulIsAuthorized({ ...call, preparsedPolicySetId: policies }) : cedar.isAuthorized({ ...call, policies });
		if (answer.type === "failure") return refusal(`the request could not be evaluated: ${answer.errors.map((e) => e.message).join("; ")}`);
		const { decision, diagnostics } = answer.response;
		const ids = [...diagnostics.reason].sort();
		const reason = ids.length ? `${decision === "allow" ? "permitted" : "forbidden"} by ${ids.join(", ")}` : NO_PERMIT;
		return { decision, policies: ids, reason, errors: diagnostics.errors.map((e) => ({ policy: e.policyId, message: e.error.message })), cached: false };
	}
}

function refusal(reason: string): Decision {
	return { decision: "deny", policies: [], reason, errors: [], cached: false };
}
