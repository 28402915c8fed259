import type { FieldProblem } from "./intent";

/**
 * The values a request may set, and why others are refused: a run with lr 5 or -1 epochs would fail or diverge
 * after queueing for a GPU, so the intent refuses it up front and says what is accepted.
 */

interface Range {
	min: number;
	max: number;
	/** The minimum itself is not allowed (a learning rate of 0 trains nothing). */
	exclusiveMin?: boolean;
	integer?: boolean;
	/** What the value is, for the message. */
	what: string;
}

export const RANGES: Readonly<Record<string, Range>> = {
	"hyperparameters.epochs": { min: 1, max: 10_000, integer: true, what: "the number of epochs" },
	"hyperparameters.learning_rate": { min: 0, max: 1, exclusiveMin: true, what: "the learning rate" },
	"hyperparameters.batch_size": { min: 1, max: 65_536, integer: true, what: "the batch size" },
	"hyperparameters.image_size": { min: 32, max: 8_192, integer: true, what: "the image size (pixels)" },
	"hyperparameters.weight_decay": { min: 0, max: 1, what: "the weight decay" },
	"hyperparameters.momentum": { min: 0, max: 1, what: "the momentum" },
	"hyperparameters.lora_rank": { min: 1, max: 1_024, integer: true, what: "the LoRA rank" },
	"hyperparameters.lora_alpha": { min: 1, max: 4_096, what: "the LoRA alpha" },
	"hyperparameters.max_seq_length": { min: 16, max: 1_048_576, integer: true, what: "the maximum sequence length" },
	"resources.gpu_count": { min: 0, max: 64, integer: true, what: "the number of GPUs" },
	num_classes: { min: 1, max: 100_000, integer: true, what: "the number of classes" },
};

function describe(r: Range): string {
	const lower = r.exclusiveMin ? `greater than ${r.min}` : `at least ${r.min}`;
	return r.integer ? `a whole number from ${r.min} to ${r.max}` : `${lower} and at most ${r.max}`;
}

/** Null when `value` is acceptable for `field`; otherwise the refusal, in a sentence. */
export function checkRange(field: string, value: number, raw = String(value)): FieldProblem | null {
	const r = RANGES[field];
	if (!r) throw new Error(`no range for ${field}`);
	const ok =
		Number.isFinite(value) &&
		(r.exclusiveMin ? value > r.min : value >= r.min) &&
		value <= r.max &&
		(!r.integer || Number.isInteger(value));
	if (ok) return null;
	return { field, value: raw, reason: `${raw} is not a valid value for ${r.what}: it must be ${describe(r)}.` };
}
