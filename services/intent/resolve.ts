import type { Hyperparameters, ModelSource, Question, TaskType, TrainingIntent } from "./intent";
import { findModel, MODEL_CATALOG, TASK_DEFAULT_MODELS, type ModelEntry } from "./model-catalog";
import type { Draft } from "./parser";
import { ask } from "./questions";

/**
 * Draft → TrainingIntent: settles what the text implies (a model's task, the catalog's defaults), finds what is
 * missing or contradictory and asks about it, and scores how much was guessed.
 */

/** Confidence factors: each guess costs a little, each open question a lot. */
const COST = {
	taskFromModel: 0.95,
	taskFromHint: 0.8,
	familyModel: 0.9,
	perTypo: 0.1,
	defaultModel: 0.85,
	datasetByName: 0.95,
	missing: 0.6,
	error: 0.5,
};

/** Tasks a stated task may narrow to when the named model does that variant ("segment" with yolov8n-seg). */
const NARROWER: Readonly<Partial<Record<TaskType, TaskType[]>>> = {
	segmentation: ["instance_segmentation"],
	classification: ["text_classification"],
};

function fitTask(stated: TaskType, modelTasks: TaskType[]): TaskType | undefined {
	if (modelTasks.includes(stated)) return stated;
	return NARROWER[stated]?.find((t) => modelTasks.includes(t));
}

function defaultModel(task: TaskType, source: ModelSource | undefined): ModelEntry | undefined {
	const name = TASK_DEFAULT_MODELS[task];
	if (!source) return name ? findModel(name) : undefined;
	return (name && findModel(name, source)) || MODEL_CATALOG.find((e) => e.source === source && e.tasks[0] === task);
}

class Resolution {
	confidence = 1;
	readonly notes: string[] = [];
	readonly missing: string[] = [];
	readonly questions: Question[] = [];
	readonly defaults: string[] = [];

	ask(q: Question): void {
		if (this.missing.includes(q.field)) return;
		this.missing.push(q.field);
		this.questions.push(q);
		this.confidence *= COST.missing;
	}
}

interface ModelChoice {
	/** The entry the run will use (the text's model in the text's library, or a default). */
	entry?: ModelEntry;
	/** The model named, even when it cannot be used as asked (its task still tells what the user wants). */
	named?: ModelEntry;
	blocked: boolean;
}

function chooseModel(draft: Draft, r: Resolution): ModelChoice {
	if (draft.models.length > 1) {
		r.ask(ask.severalModels(draft.models.map((m) => m.name)));
		return { blocked: true };
	}
	const mention = draft.models[0];
	if (!mention) {
		if (draft.ambiguous_model) r.ask(ask.modelChoice(draft.ambiguous_model.text, draft.ambiguous_model.candidates));
		return { blocked: draft.ambiguous_model !== undefined || draft.unknown_model !== undefined };
	}
	const named = findModel(mention.name, mention.source)!;
	// In the library asked for, the name as written may be another entry ("faster rcnn" in MMDetection).
	const entry = draft.source ? (findModel(mention.text, draft.source) ?? findModel(mention.name, draft.source)) : named;
	if (!entry) {
		r.ask(ask.sourceConflict(mention.name, draft.source!));
		return { named, blocked: true };
	}
	if (mention.via === "fuzzy") {
		r.confidence *= 1 - COST.perTypo * mention.distance;
		r.notes.push(`Read "${mention.text}" as ${entry.name}.`);
	} else if (mention.via === "family") {
		r.confidence *= COST.familyModel;
		r.notes.push(`"${mention.text}" names a family; using ${entry.name}.`);
	}
	return { entry, named, blocked: false };
}

function chooseTask(draft: Draft, model: ModelChoice, r: Resolution): TaskType | undefined {
	if (draft.tasks.length > 1) {
		r.ask(ask.taskChoice(draft.tasks));
		return undefined;
	}
	const stated = draft.tasks[0];
	if (model.named) {
		if (!stated) {
			r.confidence *= COST.taskFromModel;
			return model.named.tasks[0];
		}
		const fit = fitTask(stated, model.named.tasks);
		if (fit) return fit;
		r.ask(ask.taskConflict(model.named.name, model.named.tasks, stated));
		model.entry = undefined;
		model.blocked = true;
		return stated;
	}
	if (stated) return stated;
	const candidates = draft.ambiguous_model?.candidates.map((n) => findModel(n)!.tasks[0]!);
	if (candidates && new Set(candidates).size === 1) return candidates[0];
	// Classes without a task ("3 kinds of cats: …") read as classification.
	const hint = draft.task_hint ?? (draft.class_names || draft.num_classes !== undefined ? "classification" : undefined);
	if (hint) {
		r.confidence *= COST.taskFromHint;
		return hint;
	}
	r.ask(ask.task());
	return undefined;
}

function withDefaults(explicit: Hyperparameters, entry: ModelEntry | undefined, r: Resolution): Hyperparameters {
	const out: Hyperparameters = { ...explicit };
	for (const [key, value] of Object.entries(entry?.defaults ?? {}) as Array<[keyof Hyperparameters, never]>) {
		if (out[key] !== undefined) continue;
		out[key] = value;
		r.defaults.push(`hyperparameters.${key}`);
	}
	return out;
}

export function resolveDraft(draft: Draft): TrainingIntent {
	const r = new Resolution();
	const model = chooseModel(draft, r);
	const task = chooseTask(draft, model, r);

	if (!model.entry && !model.blocked && task) {
		const fallback = defaultModel(task, draft.source);
		if (fallback) {
			model.entry = fallback;
			r.defaults.push("model_name", "model_source");
			r.confidence *= COST.defaultModel;
		} else if (draft.source) r.ask(ask.noModelInSource(draft.source, task));
		else r.ask(ask.baseModel());
	}
	if (draft.unknown_model && !model.entry) r.ask(ask.unknownModel(draft.unknown_model, task));

	let { num_classes, class_names } = draft;
	if (class_names && num_classes !== undefined && num_classes !== class_names.length) {
		r.ask(ask.classNames(num_classes, class_names));
		num_classes = undefined;
		class_names = undefined;
	}
	num_classes ??= class_names?.length;

	if (!draft.dataset) r.ask(ask.dataset());
	else if (draft.dataset.kind === "name") r.confidence *= COST.datasetByName;

	const resources = { ...draft.resources };
	if (resources.gpu_count === undefined) {
		resources.gpu_count = 1;
		r.defaults.push("resources.gpu_count");
	}
	for (const e of draft.errors) {
		r.questions.push(ask.fixValue(e.field, e.reason));
		r.confidence *= COST.error;
	}
	// A model refused only for its library is still the model asked for; one refused for its task is not.
	const modelName = model.entry?.name ?? (r.missing.includes("model_source") ? model.named?.name : undefined);

	return {
		status: draft.errors.length ? "invalid" : r.missing.length ? "needs_clarification" : "complete",
		...(task ? { task_type: task } : {}),
		...(modelName ? { model_name: modelName } : {}),
		...(model.entry ? { model_source: model.entry.source } : {}),
		...(num_classes !== undefined ? { num_classes } : {}),
		...(class_names ? { class_names } : {}),
		...(draft.dataset ? { dataset: draft.dataset } : {}),
		hyperparameters: withDefaults(draft.hyperparameters, model.entry, r),
		resources,
		confidence: Math.round(r.confidence * 100) / 100,
		defaults_applied: r.defaults,
		notes: r.notes,
		missing: r.missing,
		questions: r.questions,
		errors: draft.errors,
	};
}
