import type { IntentStatus, TrainingIntent } from "./intent";

/**
 * Scoring of the parser against an evaluation set: task accuracy, per-field precision/recall/F1 over the values
 * the text states (values filled from defaults are not scored), clarification precision/recall, and the list of
 * prompts that went wrong. Shared by `bin/intent-eval.ts` and the parser's test.
 */

export interface Expected {
	status: IntentStatus;
	/** Fields the parser must ask for (status needs_clarification). */
	missing?: string[];
	/** Fields the parser must refuse (status invalid). */
	errors?: string[];
	task_type?: string;
	model_name?: string;
	model_source?: string;
	num_classes?: number;
	class_names?: string[];
	/** The dataset reference's value as written (a name in lower case). */
	dataset?: string;
	hyperparameters?: Record<string, number | string>;
	resources?: Record<string, number | string>;
}

export interface EvalPrompt {
	id: string;
	text: string;
	expect: Expected;
}

export interface FieldScore {
	tp: number;
	fp: number;
	fn: number;
	precision: number;
	recall: number;
	f1: number;
}

export interface EvalReport {
	prompts: number;
	taskAccuracy: number;
	fields: Record<string, FieldScore>;
	/** Micro-average over every field. */
	fieldF1: number;
	clarification: { precision: number; recall: number; missingExact: number };
	statusAccuracy: number;
	failures: Array<{ id: string; text: string; problems: string[] }>;
}

export const TARGETS = { taskAccuracy: 0.95, fieldF1: 0.9 };

function canonical(value: unknown): string {
	if (Array.isArray(value)) return value.map((v) => String(v).toLowerCase()).join("|");
	if (typeof value === "number") return String(Number(value.toPrecision(12)));
	return String(value).toLowerCase();
}

/** The flat, comparable fields of an expectation. */
export function expectedFields(e: Expected): Map<string, string> {
	const out = new Map<string, string>();
	for (const key of ["task_type", "model_name", "model_source", "num_classes", "class_names", "dataset"] as const) {
		if (e[key] !== undefined) out.set(key, canonical(e[key]));
	}
	for (const group of ["hyperparameters", "resources"] as const) {
		for (const [k, v] of Object.entries(e[group] ?? {})) out.set(`${group}.${k}`, canonical(v));
	}
	return out;
}

/** The flat fields of an intent that come from the text (defaults left out). */
export function predictedFields(intent: TrainingIntent): Map<string, string> {
	const out = new Map<string, string>();
	const stated = (path: string) => !intent.defaults_applied.includes(path);
	for (const key of ["task_type", "model_name", "model_source", "num_classes", "class_names"] as const) {
		if (intent[key] !== undefined && stated(key)) out.set(key, canonical(intent[key]));
	}
	if (intent.dataset) out.set("dataset", canonical(intent.dataset.value));
	for (const group of ["hyperparameters", "resources"] as const) {
		for (const [k, v] of Object.entries(intent[group])) if (stated(`${group}.${k}`)) out.set(`${group}.${k}`, canonical(v));
	}
	return out;
}

const ratio = (a: number, b: number) => (b === 0 ? 1 : a / b);
const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));

export function evaluate(prompts: EvalPrompt[], parse: (text: string) => TrainingIntent): EvalReport {
	const counts = new Map<string, { tp: number; fp: number; fn: number }>();
	const count = (field: string) => counts.get(field) ?? (counts.set(field, { tp: 0, fp: 0, fn: 0 }), counts.get(field)!);
	let taskTotal = 0;
	let taskRight = 0;
	let statusRight = 0;
	const clar = { tp: 0, fp: 0, fn: 0, missingExact: 0 };
	const failures: EvalReport["failures"] = [];

	for (const p of prompts) {
		const intent = parse(p.text);
		const problems: string[] = [];
		const want = expectedFields(p.expect);
		const got = predictedFields(intent);
		for (const field of new Set([...want.keys(), ...got.keys()])) {
			const w = want.get(field);
			const g = got.get(field);
			const c = count(field);
			if (w !== undefined && w === g) c.tp++;
			else {
				if (g !== undefined) c.fp++;
				if (w !== undefined) c.fn++;
				problems.push(`${field}: expected ${w ?? "(none)"}, got ${g ?? "(none)"}`);
			}
		}
		if (p.expect.task_type !== undefined) {
			taskTotal++;
			if (intent.task_type === p.expect.task_type) taskRight++;
		}
		if (intent.status === p.expect.status) statusRight++;
		else problems.push(`status: expected ${p.expect.status}, got ${intent.status}`);
		const shouldAsk = p.expect.status !== "complete";
		const asked = intent.status !== "complete";
		if (shouldAsk && asked) clar.tp++;
		if (!shouldAsk && asked) clar.fp++;
		if (shouldAsk && !asked) clar.fn++;
		if (p.expect.status === "needs_clarification") {
			if (sameSet(p.expect.missing ?? [], intent.missing)) clar.missingExact++;
			else problems.push(`missing: expected [${(p.expect.missing ?? []).join(", ")}], got [${intent.missing.join(", ")}]`);
		}
		if (p.expect.status === "invalid") {
			const refused = intent.errors.map((e) => e.field);
			if (!sameSet(p.expect.errors ?? [], refused)) problems.push(`errors: expected [${(p.expect.errors ?? []).join(", ")}], got [${refused.join(", ")}]`);
		}
		if (problems.length) failures.push({ id: p.id, text: p.text, problems });
	}

	const fields: Record<string, FieldScore> = {};
	const total = { tp: 0, fp: 0, fn: 0 };
	for (const [field, c] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
		const precision = ratio(c.tp, c.tp + c.fp);
		const recall = ratio(c.tp, c.tp + c.fn);
		fields[field] = { ...c, precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 };
		total.tp += c.tp;
		total.fp += c.fp;
		total.fn += c.fn;
	}
	const microP = ratio(total.tp, total.tp + total.fp);
	const microR = ratio(total.tp, total.tp + total.fn);
	const asking = prompts.filter((p) => p.expect.status === "needs_clarification").length;
	return {
		prompts: prompts.length,
		taskAccuracy: ratio(taskRight, taskTotal),
		fields,
		fieldF1: microP + microR ? (2 * microP * microR) / (microP + microR) : 0,
		clarification: { precision: ratio(clar.tp, clar.tp + clar.fp), recall: ratio(clar.tp, clar.tp + clar.fn), missingExact: ratio(clar.missingExact, asking) },
		statusAccuracy: ratio(statusRight, prompts.length),
		failures,
	};
}

export function meetsTargets(report: EvalReport): boolean {
	return report.taskAccuracy >= TARGETS.taskAccuracy && report.fieldF1 >= TARGETS.fieldF1;
}

/** The report as the eval script prints it. */
export function formatReport(report: EvalReport): string {
	const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
	const lines = [
		`prompts              ${report.prompts}`,
		`task accuracy        ${pct(report.taskAccuracy)}  (target ≥ ${pct(TARGETS.taskAccuracy)})`,
		`field F1 (micro)     ${pct(report.fieldF1)}  (target ≥ ${pct(TARGETS.fieldF1)})`,
		`status accuracy      ${pct(report.statusAccuracy)}`,
		`clarification        precision ${pct(report.clarification.precision)}, recall ${pct(report.clarification.recall)}, missing fields exact ${pct(report.clarification.missingExact)}`,
		"",
		"field                             tp   fp   fn  precision  recall     F1",
		...Object.entries(report.fields).map(
			([f, s]) => `${f.padEnd(32)} ${String(s.tp).padStart(3)}  ${String(s.fp).padStart(3)}  ${String(s.fn).padStart(3)}  ${pct(s.precision).padStart(9)}  ${pct(s.recall).padStart(6)}  ${pct(s.f1).padStart(6)}`,
		),
		"",
		`failures (${report.failures.length})`,
		...report.failures.flatMap((f) => [`  ${f.id}: ${f.text}`, ...f.problems.map((p) => `      ${p}`)]),
	];
	return lines.join("\n");
}
