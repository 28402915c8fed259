/**
 * The TrainingIntent: what a user asked for in a sentence, as plain data (the shape of
 * `schemas/intent/training-intent.json`). Values the text said are kept apart from values filled from defaults
 * (`defaults_applied`), so a caller can tell what was asked from what was assumed.
 */

export const TASK_TYPES = [
	"classification",
	"detection",
	"segmentation",
	"instance_segmentation",
	"pose_estimation",
	"anomaly_detection",
	"text_classification",
	"llm_sft",
] as const;
export type TaskType = (typeof TASK_TYPES)[number];

export const MODEL_SOURCES = ["timm", "torchvision", "ultralytics", "mmdetection", "huggingface", "anomalib", "smp"] as const;
export type ModelSource = (typeof MODEL_SOURCES)[number];

export const OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adafactor", "lion", "lamb", "nadam", "radam"] as const;
export type Optimizer = (typeof OPTIMIZERS)[number];

export interface Hyperparameters {
	epochs?: number;
	learning_rate?: number;
	batch_size?: number;
	optimizer?: Optimizer;
	image_size?: number;
	weight_decay?: number;
	momentum?: number;
	lora_rank?: number;
	lora_alpha?: number;
	max_seq_length?: number;
}
export type HyperparameterName = keyof Hyperparameters;

export interface Resources {
	gpu_count?: number;
	/** Upper case as vendors write it: A100, H100, T4, RTX4090. */
	gpu_type?: string;
}

/** A dataset as the text named it: an id (`ds-42`), a name (`coco128`), a path or a URI. */
export interface DatasetRef {
	kind: "id" | "name" | "path" | "uri";
	value: string;
}

export type IntentStatus = "complete" | "needs_clarification" | "invalid";

/** A field the parser cannot settle alone, and what to ask the user about it. */
export interface Question {
	field: string;
	question: string;
	/** Candidate answers when there are a few (the close model names, the conflicting tasks). */
	options?: string[];
}

/** A value the text gave that is out of range, with why. */
export interface FieldProblem {
	field: string;
	value: string;
	reason: string;
}

export interface TrainingIntent {
	status: IntentStatus;
	task_type?: TaskType;
	model_name?: string;
	model_source?: ModelSource;
	num_classes?: number;
	class_names?: string[];
	dataset?: DatasetRef;
	hyperparameters: Hyperparameters;
	resources: Resources;
	/** 0..1: lowered by guesses (a task implied by the model, a fuzzy model match, defaults), low when incomplete. */
	confidence: number;
	/** Dotted paths of the values filled from the catalog's defaults rather than the text. */
	defaults_applied: string[];
	/** How the parser read ambiguous spots ("reznet50" read as resnet50), in plain sentences. */
	notes: string[];
	/** Fields still needed (status needs_clarification or invalid). */
	missing: string[];
	questions: Question[];
	/** Values given but refused (status invalid). */
	errors: FieldProblem[];
}
