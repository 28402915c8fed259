/**
 * Checks a policy before it is saved: it parses, holds exactly one statement, and type-checks against the schema
 * (strict mode). Problems carry the line and column in the policy's own text. Also works out which action domains
 * the policy can touch, so it is only evaluated where it matters.
 */
import type { PolicyProblem } from "../errors";
import { ACTION_TYPE, cedar, type DetailedError } from "./cedar";
import type { AuthzSchema } from "./schema";

export interface PolicyCheck {
	problems: PolicyProblem[];
	/** The domains whose actions the policy can match; ["*"] for every domain. */
	domains: string[];
}

export function checkPolicy(schema: AuthzSchema, id: string, text: string): PolicyCheck {
	const parts = cedar.policySetTextToParts(text);
	if (parts.type === "failure") return { problems: parts.errors.flatMap((e) => problemsOf(text, e)), domains: [] };
	if (parts.policies.length !== 1 || parts.policy_templates.length) {
		const found = parts.policies.length + parts.policy_templates.length;
		return { problems: [{ line: 1, column: 1, message: `a policy must hold exactly one permit or forbid statement without slots; found ${found}` }], domains: [] };
	}
	const answer = cedar.validate({ schema: schema.text, policies: { staticPolicies: { [id]: text } }, validationSettings: { mode: "strict" } });
	if (answer.type === "failure") return { problems: answer.errors.flatMap((e) => problemsOf(text, e)), domains: [] };
	// The validator reports a mistake once per entity type it could apply to: one per place is enough to act on.
	const seen = new Set<string>();
	const problems = answer.validationErrors.flatMap((v) => problemsOf(text, v.error)).filter((p) => !seen.has(`${p.line}:${p.column}`) && seen.add(`${p.line}:${p.column}`));
	return { problems, domains: problems.length ? [] : domainsOf(schema, text) };
}

function domainsOf(schema: AuthzSchema, text: string): string[] {
	const json = cedar.policyToJson(text);
	if (json.type !== "success" || json.json.action.op === "All") return ["*"];
	const c = json.json.action;
	const uids = "entities" in c ? c.entities : "entity" in c ? [c.entity] : [];
	const out = new Set<string>();
	for (const uid of uids) {
		const { type, id } = "__entity" in uid ? uid.__entity : uid;
		if (type !== ACTION_TYPE) return ["*"];
		const covered = schema.actions.get(id)?.domain ?? schema.groups.get(id);
		if (covered === undefined) return ["*"];
		for (const d of typeof covered === "string" ? [covered] : covered) out.add(d);
	}
	return [...out];
}

function problemsOf(text: string, e: DetailedError): PolicyProblem[] {
	const detail = [e.message.replace(/^for policy `[^`]*`, /, ""), e.help].filter(Boolean).join("; ");
	const locations = e.sourceLocations?.length ? e.sourceLocations : [{ start: 0, end: 0, label: null }];
	return locations.map((l) => ({ ...lineAndColumn(text, l.start), message: l.label ? `${detail}: ${l.label}` : detail }));
}

/** Cedar reports byte offsets; lines and columns count characters, from 1. */
function lineAndColumn(text: string, byteOffset: number): { line: number; column: number } {
	const before = Buffer.from(text, "utf8").subarray(0, byteOffset).toString("utf8");
	const lines = before.split("\n");
	return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}
