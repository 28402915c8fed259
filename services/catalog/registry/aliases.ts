import { CatalogError, isoAt, type AliasChange, type AliasState, type Model, type ModelVersion } from "./entities";

/**
 * Aliases (stages) of a model: a name pointing at one of its versions, with its full history. Each command
 * returns the new model document and the change it made (null when nothing changed, so a replayed command
 * publishes nothing); an illegal one throws before anything is changed.
 */

export const ALIAS_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

export interface AliasStep {
	model: Model;
	change: AliasChange | null;
}

/** Only what promote needs of a version: its id and the model it belongs to. */
export type VersionRef = Pick<ModelVersion, "id" | "model_id">;

function checkAlias(alias: string): void {
	if (typeof alias !== "string" || !ALIAS_PATTERN.test(alias)) {
		throw new CatalogError(`alias ${JSON.stringify(alias)} must match ${ALIAS_PATTERN.source}`, "invalid");
	}
}

function checkActor(actor: string): void {
	if (typeof actor !== "string" || actor.trim().length === 0) throw new CatalogError("actor must be a non-empty string", "invalid");
}

function apply(model: Model, change: AliasChange): AliasStep {
	const old: AliasState | undefined = model.aliases[change.alias];
	const state: AliasState = { version_id: change.to, history: [...(old?.history ?? []), change] };
	return { model: { ...model, aliases: { ...model.aliases, [change.alias]: state }, updated_at: change.at }, change };
}

/** Points `alias` at `version` (a version of this model). Pointing it where it already points changes nothing. */
export function promote(model: Model, alias: string, version: VersionRef, actor: string, at: Date, reason?: string): AliasStep {
	checkAlias(alias);
	checkActor(actor);
	if (version.model_id !== model.id) {
		throw new CatalogError(`version ${version.id} belongs to model ${version.model_id}, not to ${model.id}`, "invalid");
	}
	const when = isoAt(at);
	const current = model.aliases[alias]?.version_id;
	if (current === version.id) return { model, change: null };
	return apply(model, {
		model_id: model.id,
		alias,
		op: "promote",
		...(current === undefined ? {} : { from: current }),
		to: version.id,
		actor,
		at: when,
		...(reason === undefined ? {} : { reason }),
	});
}

/**
 * The targets the alias went through, as a stack: a promotion pushes, a rollback pops. So two rollbacks in a
 * row walk back two promotions instead of toggling between the last two versions.
 */
export function targetStack(state: AliasState): string[] {
	const stack: string[] = [];
	for (const c of state.history) {
		if (c.op === "rollback") stack.pop();
		else if (stack.at(-1) !== c.to) stack.push(c.to);
	}
	return stack;
}

/** Points `alias` back at the version it pointed at before its last promotion. */
export function rollback(model: Model, alias: string, actor: string, at: Date, reason?: string): AliasStep {
	checkAlias(alias);
	checkActor(actor);
	const state = model.aliases[alias];
	if (state === undefined) throw new CatalogError(`model ${model.id} has no alias ${alias}`, "not_found");
	const stack = targetStack(state);
	const previous = stack.at(-2);
	if (previous === undefined) {
		throw new CatalogError(`alias ${alias} of model ${model.id} has no earlier version to roll back to`, "conflict");
	}
	return apply(model, {
		model_id: model.id,
		alias,
		op: "rollback",
		from: state.version_id,
		to: previous,
		actor,
		at: isoAt(at),
		...(reason === undefined ? {} : { reason }),
	});
}

/** The aliases pointing at a version, sorted (stable search documents). */
export function aliasesOf(model: Model, versionId: string): string[] {
	return Object.entries(model.aliases)
		.filter(([, s]) => s.version_id === versionId)
		.map(([a]) => a)
		.sort();
}
