import type { RunRequest, RunResources } from "../execution/run";
import { describeFieldErrors, platformSchemas, SCHEMA_BASE_URI } from "../../lib/schemas";
import type { DatasetRef, Hyperparameters, ModelSource, TaskType, TrainingIntent } from "./intent";
import { findModel, SOURCE_IMAGES, type ModelEntry } from "./model-catalog";

/**
 * A complete TrainingIntent → a TrainingPlan (`schemas/intent/training-plan.json`): the resolved model, dataset,
 * hyperparameters, and `run`, the exact params of `execution.submit`. The trainer is the image of the model's
 * library; its command carries every hyperparameter as a flag, started with torchrun when several GPUs are asked.
 */

export const TRAINING_PLAN_SCHEMA = `${SCHEMA_BASE_URI}intent/training-plan.json`;
export const TRAINING_INTENT_SCHEMA = `${SCHEMA_BASE_URI}intent/training-intent.json`;

export interface TrainingPlan {
	plan_version: 1;
	task_type: TaskType;
	model_name: string;
	model_source: ModelSource;
	dataset: DatasetRef;
	num_classes?: number;
	class_names?: string[];
	hyperparameters: Hyperparameters;
	confidence: number;
	defaults_applied: string[];
	run: RunRequest;
}

export interface PlanContext {
	workspace: string;
	/** Makes a resubmission of the same plan return the same run. */
	request_id?: string;
	intent_ref?: string;
	plan_ref?: string;
}

export class PlanError extends Error {
	override name = "PlanError";
}

/** CPU and memory per GPU by the model's size class. */
const HOST: Readonly<Record<ModelEntry["scale"], { cpu: number; memoryGi: number }>> = {
	small: { cpu: 4, memoryGi: 16 },
	medium: { cpu: 8, memoryGi: 32 },
	llm: { cpu: 16, memoryGi: 128 },
};

function flag(name: string): string {
	return `--${name.replace(/_/g, "-")}`;
}

function command(intent: TrainingIntent, entry: ModelEntry, hp: Hyperparameters, gpus: number): string[] {
	const launcher = gpus > 1 ? ["torchrun", "--standalone", `--nproc-per-node=${gpus}`, "-m"] : ["python", "-m"];
	const args = ["--source", entry.source, "--task", intent.task_type!, "--model", entry.name, "--dataset", intent.dataset!.value];
	if (intent.num_classes !== undefined) args.push("--num-classes", String(intent.num_classes));
	for (const [key, value] of Object.entries(hp)) if (value !== undefined) args.push(flag(key), String(value));
	return [...launcher, "savassan_trainer", ...args];
}

/** The plan of a complete intent; throws a PlanError naming what is still open otherwise. */
export function buildPlan(intent: TrainingIntent, ctx: PlanContext): TrainingPlan {
	if (intent.status !== "complete") {
		const open = [...intent.missing, ...intent.errors.map((e) => e.field)];
		throw new PlanError(`The request is not complete yet; still open: ${open.join(", ")}.`);
	}
	const entry = findModel(intent.model_name!, intent.model_source);
	if (!entry) throw new PlanError(`The model ${intent.model_name} from ${intent.model_source} is not in the catalog.`);
	const gpus = intent.resources.gpu_count ?? 1;
	const host = HOST[entry.scale];
	const resources: RunResources = {
		cpu: String(host.cpu * Math.max(1, gpus)),
		memory: `${host.memoryGi * Math.max(1, gpus)}Gi`,
		gpus,
		...(intent.resources.gpu_type ? { gpu_type: intent.resources.gpu_type } : {}),
	};
	const env: Record<string, string> = { DATASET_KIND: intent.dataset!.kind, DATASET_REF: intent.dataset!.value };
	if (intent.class_names) env.CLASS_NAMES = JSON.stringify(intent.class_names);
	const plan: TrainingPlan = {
		plan_version: 1,
		task_type: intent.task_type!,
		model_name: entry.name,
		model_source: entry.source,
		dataset: intent.dataset!,
		...(intent.num_classes !== undefined ? { num_classes: intent.num_classes } : {}),
		...(intent.class_names ? { class_names: intent.class_names } : {}),
		hyperparameters: intent.hyperparameters,
		confidence: intent.confidence,
		defaults_applied: intent.defaults_applied,
		run: {
			workspace: ctx.workspace,
			...(ctx.request_id ? { request_id: ctx.request_id } : {}),
			...(ctx.intent_ref ? { intent_ref: ctx.intent_ref } : {}),
			...(ctx.plan_ref ? { plan_ref: ctx.plan_ref } : {}),
			image: SOURCE_IMAGES[entry.source],
			command: command(intent, entry, intent.hyperparameters, gpus),
			env,
			resources,
		},
	};
	const errors = platformSchemas().validator(TRAINING_PLAN_SCHEMA)(plan);
	if (errors.length) throw new PlanError(`The plan does not match its schema: ${describeFieldErrors(errors)}.`);
	return plan;
}
