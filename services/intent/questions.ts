import type { ModelSource, Question, TaskType } from "./intent";
import { TASK_TYPES } from "./intent";
import { MODEL_CATALOG, TASK_DEFAULT_MODELS } from "./model-catalog";

/** The questions a draft raises, one builder per situation, each naming what is missing or in conflict. */

export const TASK_LABELS: Readonly<Record<TaskType, string>> = {
	classification: "image classification",
	detection: "object detection",
	segmentation: "semantic segmentation",
	instance_segmentation: "instance segmentation",
	pose_estimation: "pose estimation",
	anomaly_detection: "anomaly detection",
	text_classification: "text classification",
	llm_sft: "LLM fine-tuning (SFT)",
};

const LLM_SUGGESTIONS = ["meta-llama/Meta-Llama-3-8B", "mistralai/Mistral-7B-v0.1", "Qwen/Qwen2.5-7B"];

function withArticle(label: string): string {
	return `${/^[aeiou]/i.test(label) ? "an" : "a"} ${label}`;
}

function quoteList(items: string[]): string {
	return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;
}

export const ask = {
	dataset(): Question {
		return { field: "dataset", question: "Which dataset should I train on? Give a dataset id (ds-…), a name, a path or a URL." };
	},
	task(): Question {
		return {
			field: "task_type",
			question: `What should the model learn: ${quoteList(TASK_TYPES.map((t) => TASK_LABELS[t]))}?`,
			options: [...TASK_TYPES],
		};
	},
	taskChoice(tasks: TaskType[]): Question {
		return {
			field: "task_type",
			question: `The request mentions ${quoteList(tasks.map((t) => TASK_LABELS[t]))}: which one should this run train?`,
			options: tasks,
		};
	},
	modelChoice(written: string, candidates: string[]): Question {
		return { field: "model_name", question: `"${written}" is close to ${quoteList(candidates)}: which model did you mean?`, options: candidates };
	},
	severalModels(names: string[]): Question {
		return { field: "model_name", question: `The request names several models (${names.join(", ")}): which one should be trained?`, options: names };
	},
	unknownModel(written: string, task: TaskType | undefined): Question {
		const suggestion = task ? TASK_DEFAULT_MODELS[task] : undefined;
		return {
			field: "model_name",
			question: `I do not know a model called "${written}". Which model should I use?${suggestion ? ` For ${TASK_LABELS[task!]}, ${suggestion} is a good start.` : ""}`,
			...(suggestion ? { options: [suggestion] } : {}),
		};
	},
	baseModel(): Question {
		return { field: "model_name", question: `Which base model should be fine-tuned? For example ${quoteList(LLM_SUGGESTIONS)}.`, options: LLM_SUGGESTIONS };
	},
	taskConflict(model: string, modelTasks: TaskType[], stated: TaskType): Question {
		const alternative = TASK_DEFAULT_MODELS[stated];
		return {
			field: "model_name",
			question:
				`${model} is ${withArticle(quoteList(modelTasks.map((t) => TASK_LABELS[t])))} model, but the request asks for ${TASK_LABELS[stated]}. ` +
				`Should I use ${withArticle(TASK_LABELS[stated])} model${alternative ? ` such as ${alternative}` : ""} instead, or did you mean ${TASK_LABELS[modelTasks[0]!]}?`,
			options: [...(alternative ? [alternative] : []), model],
		};
	},
	sourceConflict(model: string, asked: ModelSource): Question {
		const sources = [...new Set(MODEL_CATALOG.filter((e) => e.name === model).map((e) => e.source))];
		return {
			field: "model_source",
			question: `${model} is not available from ${asked}; it is available from ${quoteList(sources)}. Which library should I use?`,
			options: sources,
		};
	},
	noModelInSource(source: ModelSource, task: TaskType): Question {
		return { field: "model_source", question: `${source} has no ${TASK_LABELS[task]} model in the catalog. Which model or library should I use?` };
	},
	classNames(count: number, names: string[]): Question {
		return {
			field: "class_names",
			question: `The request says ${count} classes but names ${names.length} (${names.join(", ")}). What are the class names?`,
		};
	},
	fixValue(field: string, reason: string): Question {
		return { field, question: `${reason} Which value should I use?` };
	},
};
