import type { TrainingIntent } from "./intent";
import { extractDraft, splitList, type Draft } from "./parser";
import { resolveDraft } from "./resolve";

/**
 * A conversation about one training request: each turn is parsed alone, then merged into the session's draft
 * (values the later turn states win), and the merged draft is resolved again. A short reply to a question
 * ("ds-77", "siamese, persian, bengal") is read as the answer to what was asked.
 */

function replaces<K extends keyof Draft>(next: Draft, keys: K[]): boolean {
	return keys.some((k) => {
		const v = next[k];
		return Array.isArray(v) ? v.length > 0 : v !== undefined;
	});
}

/** `prev` updated by `next`: every value `next` states replaces the earlier one; the rest is kept. */
export function mergeDrafts(prev: Draft, next: Draft): Draft {
	const newModel = replaces(next, ["models", "ambiguous_model", "unknown_model"]);
	const newTask = replaces(next, ["tasks", "task_hint"]);
	const restated = new Set([
		...Object.keys(next.hyperparameters).map((k) => `hyperparameters.${k}`),
		...Object.keys(next.resources).map((k) => `resources.${k}`),
		...next.errors.map((e) => e.field),
	]);
	const merged: Draft = {
		tasks: newTask ? next.tasks : prev.tasks,
		models: newModel ? next.models : prev.models,
		hyperparameters: { ...prev.hyperparameters, ...next.hyperparameters },
		resources: { ...prev.resources, ...next.resources },
		errors: [...prev.errors.filter((e) => !restated.has(e.field)), ...next.errors],
	};
	const task_hint = newTask ? next.task_hint : prev.task_hint;
	const ambiguous_model = newModel ? next.ambiguous_model : prev.ambiguous_model;
	const unknown_model = newModel ? next.unknown_model : prev.unknown_model;
	// A library named earlier goes with the model named earlier.
	const source = next.source ?? (newModel ? undefined : prev.source);
	const num_classes = next.num_classes ?? prev.num_classes;
	const class_names = next.class_names ?? prev.class_names;
	const dataset = next.dataset ?? prev.dataset;
	// A value refused in the later turn is not silently replaced by the earlier one.
	for (const e of next.errors) {
		const [group, key] = e.field.split(".") as ["hyperparameters" | "resources", string];
		if (key) delete (merged[group] as Record<string, unknown>)[key];
	}
	return {
		...merged,
		...(task_hint ? { task_hint } : {}),
		...(ambiguous_model ? { ambiguous_model } : {}),
		...(unknown_model ? { unknown_model } : {}),
		...(source ? { source } : {}),
		...(num_classes !== undefined ? { num_classes } : {}),
		...(class_names ? { class_names } : {}),
		...(dataset ? { dataset } : {}),
	};
}

/** A reply that is only an answer ("ds-77", "cats_v2", "a, b, c") to a question the previous turn asked. */
function readAnswer(text: string, asked: string[], next: Draft): void {
	const reply = text.trim().replace(/^(?:use|it'?s|the|try)\s+/i, "").replace(/[.!]+$/, "");
	if (asked.includes("dataset") && !next.dataset && /^[\w.\-]+$/.test(reply) && /[a-z]/i.test(reply)) {
		next.dataset = { kind: /^dsv?[-_]/i.test(reply) ? "id" : "name", value: reply };
	}
	if (asked.includes("class_names") && !next.class_names) {
		const list = splitList(reply);
		if (list.items.length) next.class_names = list.items;
	}
}

export interface SessionTurn {
	/** The merged draft: store it with the session and pass it to the next turn. */
	draft: Draft;
	intent: TrainingIntent;
}

/**
 * Parses one turn of a session; `previous` is the draft the last turn returned (none for the first turn). `next`
 * is what this turn's text says, when another reader (the LLM provider) completed the offline one.
 */
export function continueSession(previous: Draft | undefined, text: string, next: Draft = extractDraft(text)): SessionTurn {
	if (!previous) return { draft: next, intent: resolveDraft(next) };
	readAnswer(text, resolveDraft(previous).missing, next);
	const draft = mergeDrafts(previous, next);
	return { draft, intent: resolveDraft(draft) };
}
