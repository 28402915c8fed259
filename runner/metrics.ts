import type { Metrics, Progress } from "../events/telemetry";

/**
 * Reads metrics and progress out of a trainer's output lines: `loss: 0.12`, `loss=0.12`, `val_loss 0.3`,
 * `acc: 91.2%`, `Epoch 3/10`, `epoch 3 of 10`, `step 120/500`, Keras/tqdm `32/32 [===]`, JSON lines, Python dict
 * reprs (HuggingFace Trainer) and ultralytics' column tables. Stateful: it follows the current epoch and reports
 * an epoch's end when a later epoch starts.
 */

/** Longer lines are not parsed at all: no trainer prints a 16 KiB metrics line, and it bounds the work per line. */
export const MAX_PARSED_LINE = 16 * 1024;
/** The telemetry schemas accept at most 64 metrics per message. */
export const MAX_METRICS = 64;

const KEY = /^[A-Za-z][A-Za-z0-9_./-]{0,63}$/;

/**
 * One `key<sep>value` pair. Every quantifier is bounded and the key is matched atomically (`(?=(…))\1`), so a
 * hostile line costs linear time. The key must start the line or follow a delimiter (so `25.0it/s` or `=NaN`
 * never start a key). Groups: 1 key, 2 separator, 3 number, 4 percent sign, 5 total (`3/10`, `3 of 10`).
 */
const PAIR = new RegExp(
	String.raw`(?<=^|[\s,;{(\[|'"])` +
		String.raw`(?=([A-Za-z][A-Za-z0-9_./-]{0,63}))\1['"]?` +
		String.raw`(\s{0,8}[:=]\s{0,8}|\s{1,8})` +
		String.raw`([-+]?(?:\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})(?:[eE][-+]?\d{1,4})?)(%?)` +
		String.raw`(?:(?:\s{0,2}\/\s{0,2}|\s{1,2}of\s{1,2})(\d{1,12}))?` +
		String.raw`(?![A-Za-z0-9_.])`,
	"g",
);

/** A bare progress counter before a bar: Keras `32/32 [====]`, tqdm `| 16/32 [00:01<…]`. */
const BAR_COUNTER = /(?<![A-Za-z0-9_./])(\d{1,12})\/(\d{1,12})\s{0,2}\[/;

/**
 * Names accepted with a bare space as separator (`val_loss 0.3`): only metric-looking words, because
 * `Saving checkpoint 3` or `has 3 layers` are prose, not metrics.
 */
const SPACED_METRIC =
	/(?:^|[_./-])(?:[a-z0-9]*loss|acc|accuracy|lr|learning_rate|f1|auc|precision|recall|perplexity|ppl|mae|mse|rmse|iou|bleu|wer|map[0-9-]*|top[0-9]+)$/;

const PROGRESS_KEYS = new Set(["epoch", "epochs", "step", "steps"]);
type ProgressKey = "epoch" | "epochs" | "step" | "steps";

/** Table headers printed by ultralytics (`Epoch GPU_mem box_loss …`, `Class Images Instances …`). */
const TABLE_HEADER_FIRST = /^(?:epoch|class)$/i;
/** A table cell: a number, a number with a unit (`0.5G`), a percentage or an `n/m` counter. */
const TABLE_CELL = /^(?:[-+]?(?:\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})(?:[eE][-+]?\d{1,4})?[A-Za-z%]?|\d{1,12}\/\d{1,12})$/;
/** A header cell is a name (`GPU_mem`, `Box(P`, `mAP50-95`), not prose ending in punctuation. */
const TABLE_HEADER_CELL = /^[A-Za-z][^\s,;.]{0,63}$/;
const PLAIN_NUMBER = /^[-+]?(?:\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})(?:[eE][-+]?\d{1,4})?$/;

export interface EpochEnd {
	epoch: number;
	epochs?: number;
	/** The metrics seen while that epoch ran (latest value of each). */
	metrics: Metrics;
}

export interface ParsedLine {
	/** Metrics on this line (may be empty). */
	metrics: Metrics;
	/** The current progress, when this line said something about progress. */
	progress?: Progress;
	/** Set when this line started a later epoch: the previous one has ended. */
	epochEnded?: EpochEnd;
}

/** What one line said, before it is applied to the parser's state. */
interface Found {
	metrics: Metrics;
	epoch?: number;
	epochs?: number;
	step?: number;
	steps?: number;
}

export class MetricParser {
	private epoch?: number;
	/** The epoch as printed, when fractional (HuggingFace logs `'epoch': 1.5` = one and a half epochs done). */
	private epochRaw?: number;
	private epochs?: number;
	private step?: number;
	private steps?: number;
	/** Seen `Epoch 0`: epochs are counted from 0 (Lightning), which changes the fraction done. */
	private zeroBased = false;
	private epochMetrics: Metrics = {};
	private last: Metrics = {};
	private header?: string[];
	private finished = false;

	parse(line: string): ParsedLine {
		if (line.length > MAX_PARSED_LINE) return { metrics: {} };
		const found = this.extract(line);
		const result: ParsedLine = { metrics: found.metrics };
		let progressed = false;
		if (found.epochs !== undefined) {
			this.epochs = found.epochs;
			progressed = true;
		}
		if (found.epoch !== undefined) {
			const ended = this.enterEpoch(found.epoch);
			if (ended) result.epochEnded = ended;
			progressed = true;
		}
		if (found.steps !== undefined) {
			this.steps = found.steps;
			progressed = true;
		}
		if (found.step !== undefined) {
			this.step = found.step;
			progressed = true;
		}
		// After enterEpoch: the line that starts an epoch carries that epoch's metrics, not the previous one's.
		merge(this.epochMetrics, found.metrics);
		merge(this.last, found.metrics);
		if (progressed) result.progress = this.progress();
		return result;
	}

	/** The end of the last epoch, once, when the trainer has exited (no later epoch will announce it). */
	finish(): EpochEnd | undefined {
		if (this.finished || this.epoch === undefined) return undefined;
		this.finished = true;
		return this.ended();
	}

	/** Where the trainer is, with the fraction done when it can be told. */
	progress(): Progress {
		const p: Progress = {};
		if (this.epoch !== undefined) p.epoch = this.epoch;
		if (this.epochs !== undefined) p.epochs = this.epochs;
		if (this.step !== undefined) p.step = this.step;
		if (this.steps !== undefined) p.steps = this.steps;
		const fraction = this.fraction();
		if (fraction !== undefined) p.fraction = fraction;
		return p;
	}

	/** The latest value of every metric seen so far (at most MAX_METRICS names). */
	latest(): Metrics {
		return { ...this.last };
	}

	private fraction(): number | undefined {
		const within =
			this.step !== undefined && this.steps !== undefined ? Math.min(this.step / this.steps, 1) : undefined;
		if (this.epochRaw !== undefined) {
			// HuggingFace: the epoch says how much is done, and its progress bar counts global steps.
			return this.epochs !== undefined ? clamp01(this.epochRaw / this.epochs) : within;
		}
		if (this.epoch !== undefined) {
			// Steps count within the epoch; without the number of epochs, how much is done cannot be told.
			if (this.epochs === undefined) return undefined;
			const done = this.epoch - (this.zeroBased ? 0 : 1) + (within ?? 0);
			return clamp01(done / this.epochs);
		}
		// No epochs at all: the step counter is global (`step 120/500`).
		return within;
	}

	private enterEpoch(raw: number): EpochEnd | undefined {
		// A fractional epoch is "that much done": 1.5 is inside the second epoch, 1.0 the end of the first.
		const fractional = !Number.isInteger(raw);
		const epoch = fractional ? Math.ceil(raw) : raw;
		this.epochRaw = fractional || this.epochRaw !== undefined ? raw : undefined;
		if (epoch === 0 && !fractional) this.zeroBased = true;
		const previous = this.epoch;
		if (previous === epoch) return undefined;
		const ended = previous !== undefined && epoch > previous ? this.ended() : undefined;
		// A later epoch ends the previous one; an earlier one means the trainer started over: forget, report nothing.
		this.epoch = epoch;
		this.epochMetrics = {};
		this.step = undefined;
		return ended;
	}

	private ended(): EpochEnd {
		const end: EpochEnd = { epoch: this.epoch!, metrics: { ...this.epochMetrics } };
		if (this.epochs !== undefined) end.epochs = this.epochs;
		return end;
	}

	private extract(line: string): Found {
		const trimmed = line.trim();
		const found: Found = { metrics: {} };
		if (trimmed.startsWith("{") && trimmed.endsWith("}") && this.fromJson(trimmed, found)) return found;
		this.fromTable(trimmed, found);
		this.fromPairs(line, found);
		if (found.step === undefined) {
			const bar = BAR_COUNTER.exec(line);
			if (bar) {
				setProgress(found, "step", Number(bar[1]));
				setProgress(found, "steps", Number(bar[2]));
			}
		}
		return found;
	}

	/** A JSON object line: its numeric top-level fields. False when it is not JSON (a Python dict repr, say). */
	private fromJson(text: string, found: Found): boolean {
		let value: unknown;
		try {
			value = JSON.parse(text);
		} catch {
			return false;
		}
		if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
		for (const [key, v] of Object.entries(value)) {
			if (typeof v === "number") add(found, key, v);
		}
		return true;
	}

	private fromPairs(line: string, found: Found): void {
		PAIR.lastIndex = 0;
		for (let m = PAIR.exec(line); m !== null; m = PAIR.exec(line)) {
			const key = m[1].toLowerCase();
			const spaced = !/[:=]/.test(m[2]);
			const progressKey = PROGRESS_KEYS.has(key);
			if (spaced && !progressKey && !SPACED_METRIC.test(key)) continue;
			if (progressKey) {
				if (m[5] !== undefined) {
					// `Epoch 3/10`, `step 120 of 500`: a counter and its total.
					const counter = key.startsWith("epoch") ? "epoch" : "step";
					setProgress(found, counter, Number(m[3]));
					setProgress(found, `${counter}s`, Number(m[5]));
				} else {
					setProgress(found, key as ProgressKey, Number(m[3]));
				}
				continue;
			}
			// `samples 32/32` is a counter, not a metric.
			if (m[5] !== undefined) continue;
			const value = m[4] === "%" ? Number(m[3]) / 100 : Number(m[3]);
			add(found, key, value);
		}
	}

	/**
	 * ultralytics prints a header row, then value rows under it (updated with \r): remember the header and
	 * read a row whose cells, after the first, are all numbers.
	 */
	private fromTable(trimmed: string, found: Found): void {
		if (trimmed.length > 1024) return;
		const cells = cutAtColon(trimmed.split(/\s+/));
		if (cells.length >= 4 && TABLE_HEADER_FIRST.test(cells[0]) && cells.every((c) => TABLE_HEADER_CELL.test(c))) {
			this.header = cells;
			return;
		}
		const header = this.header;
		if (!header || cells.length !== header.length || !cells.slice(1).every((c) => TABLE_CELL.test(c))) return;
		header.forEach((name, i) => {
			const cell = cells[i];
			const key = name.toLowerCase();
			const counter = /^(\d{1,12})\/(\d{1,12})$/.exec(cell);
			if (counter && (key === "epoch" || key === "step")) {
				setProgress(found, key, Number(counter[1]));
				setProgress(found, key === "epoch" ? "epochs" : "steps", Number(counter[2]));
			} else if (PLAIN_NUMBER.test(cell)) {
				add(found, name, Number(cell));
			}
		});
	}
}

/** Adds one field to what a line said: a progress counter or a metric; drops names and values telemetry refuses. */
function add(found: Found, rawKey: string, value: number): void {
	if (!KEY.test(rawKey) || !Number.isFinite(value)) return;
	let key = rawKey.toLowerCase();
	if (PROGRESS_KEYS.has(key)) {
		setProgress(found, key as ProgressKey, value);
		return;
	}
	if (key === "acc") key = "accuracy";
	if (key in found.metrics || Object.keys(found.metrics).length < MAX_METRICS) found.metrics[key] = value;
}

/** Progress fields are whole non-negative numbers (totals at least 1); only `epoch` may be fractional (HF). */
function setProgress(found: Found, key: ProgressKey, value: number): void {
	if (!Number.isFinite(value) || value < 0) return;
	if (key === "epoch") {
		found.epoch = value;
		return;
	}
	if (!Number.isInteger(value)) return;
	if ((key === "epochs" || key === "steps") && value < 1) return;
	found[key] = value;
}

function merge(into: Metrics, from: Metrics): void {
	for (const [key, value] of Object.entries(from)) {
		if (key in into || Object.keys(into).length < MAX_METRICS) into[key] = value;
	}
}

/** Table cells end at the first cell ending in ':' (ultralytics puts a progress bar after it); that colon goes. */
function cutAtColon(cells: string[]): string[] {
	const out: string[] = [];
	for (const cell of cells) {
		if (cell.endsWith(":")) {
			const bare = cell.replace(/[):]+$/, "");
			if (bare) out.push(bare);
			break;
		}
		out.push(cell);
	}
	return out;
}

function clamp01(x: number): number {
	return Math.min(1, Math.max(0, x));
}
