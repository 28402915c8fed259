import { OPTIMIZERS, type DatasetRef, type FieldProblem, type Hyperparameters, type ModelSource, type Optimizer, type Resources, type TaskType, type TrainingIntent } from "./intent";
import { scanModels, type ModelMention } from "./model-matcher";
import { SOURCE_ALIASES } from "./model-catalog";
import { COUNT_WORD_SOURCE, NUMBER_SOURCE, parseNumber } from "./numbers";
import { checkRange } from "./ranges";
import { resolveDraft } from "./resolve";
import { MASK, TextScanner } from "./text-scanner";

/**
 * Text → Draft: what one message says explicitly, nothing inferred. Deterministic and offline: ordered regular
 * expressions over a scanner that masks what each step has read, then the model matcher. `resolveDraft` turns a
 * draft (one message, or a whole conversation merged) into a TrainingIntent.
 */

export interface Draft {
	/** Every task the text states, in order (more than one distinct task is ambiguous). */
	tasks: TaskType[];
	/** A task only hinted at ("LoRA" suggests LLM fine-tuning), used when nothing stronger says one. */
	task_hint?: TaskType;
	models: ModelMention[];
	ambiguous_model?: { text: string; candidates: string[] };
	unknown_model?: string;
	source?: ModelSource;
	num_classes?: number;
	class_names?: string[];
	dataset?: DatasetRef;
	hyperparameters: Hyperparameters;
	resources: Resources;
	errors: FieldProblem[];
}

export function emptyDraft(): Draft {
	return { tasks: [], models: [], hyperparameters: {}, resources: {}, errors: [] };
}

const NUM = `(${NUMBER_SOURCE})`;
const QUOTE = `["'“”]?`;
const CONNECTOR = String.raw`(?:\s*(?:[:=]|\b(?:of|to|is|at|be|around|about|approximately|set|should|equal|as)\b|은|는|을|를|이|가)\s*)*\s*`;

// ---- datasets -------------------------------------------------------------------------------------------------

const URI = /\b(?:s3|gs|gcs|az|abfs|hf|https?|file|minio):\/\/[^\s"'<>,;]+/gi;
const PATH = /(?<![\w:/.\-])(?:~|\.{1,2})?\/[\w.\-]+(?:\/[\w.\-]*)*/g;
const DATASET_ID = /\b(?:ds|dsv)[-_][A-Za-z0-9][\w-]*/gi;
/** Public datasets people name without saying "dataset", under their usual spellings. */
const KNOWN_DATASETS: Array<[RegExp, string]> = [
	[/\bmvtec(?:[\s-]?ad)?\b/gi, "mvtec"],
	[/\boxford[\s-](?:iiit[\s-])?pets?\b/gi, "oxford pets"],
	[/\bpascal[\s-]?voc\b|\bvoc\b/gi, "voc"],
	[/\bcoco128\b/gi, "coco128"],
	[/\bcoco\b/gi, "coco"],
	[/\bcifar[\s-]?100\b/gi, "cifar100"],
	[/\bcifar[\s-]?10\b/gi, "cifar10"],
	[/\bfashion[\s-]?mnist\b/gi, "fashion-mnist"],
	[/\bmnist\b/gi, "mnist"],
	[/\bimagenette\b/gi, "imagenette"],
	[/\bimagenet\b/gi, "imagenet"],
	[/\bcityscapes\b/gi, "cityscapes"],
	[/\bade20k\b/gi, "ade20k"],
	[/\bkitti\b/gi, "kitti"],
	[/\bimdb\b/gi, "imdb"],
	[/\bsst[\s-]?2\b/gi, "sst2"],
	[/\bag[\s_-]news\b/gi, "ag_news"],
	[/\balpaca\b/gi, "alpaca"],
	[/\bdolly\b/gi, "dolly"],
	[/\boasst1?\b/gi, "oasst1"],
];
/** Words that sit before "dataset" without naming one ("my uploaded dataset"). */
const NOT_DATASET_NAMES = new Set(
	"a an the my our your their this that same new own custom uploaded labeled labelled training train test validation image images text whole full entire small big large public private internal classification detection segmentation".split(" "),
);

function datasetFromLocation(scanner: TextScanner, draft: Draft): void {
	const set = (kind: DatasetRef["kind"], value: string) => {
		draft.dataset = { kind, value: value.replace(/[.,;:)]+$/, "") };
	};
	scanner.take(URI, (m) => set("uri", m[0]));
	scanner.take(PATH, (m) => set("path", m[0]));
	scanner.take(DATASET_ID, (m) => set("id", m[0].replace(/-+$/, "")));
}

function datasetFromName(scanner: TextScanner, draft: Draft): void {
	if (draft.dataset) return;
	for (const [re, name] of KNOWN_DATASETS) scanner.take(re, () => void (draft.dataset ??= { kind: "name", value: name }));
	if (draft.dataset) return;
	const named = (m: RegExpExecArray) => {
		const value = m[1]!.toLowerCase();
		if (NOT_DATASET_NAMES.has(value) || /^\d+$/.test(value)) return false;
		draft.dataset = { kind: "name", value };
		return true;
	};
	scanner.take(/(?:\b(?:dataset|data set)|데이터셋)\s*(?:called|named|:)?\s*["']?([A-Za-z][\w.-]*)/gi, named);
	scanner.take(/\b([A-Za-z][\w.-]*)\s+(?:(?:dataset|data set)\b|데이터셋)/gi, named);
}

// ---- resources ------------------------------------------------------------------------------------------------

const GPU_TYPE = String.raw`(?:A100|H100|H200|V100|T4|L40S|L40|L4|A10G|A10|A6000|A40|P100|K80|MI300X?|MI250|RTX\s?\d{4}(?:\s?Ti)?|[34]090)`;
const GPU_COUNT = `(\\d+|${COUNT_WORD_SOURCE}|a|an|single)`;

function gpuType(raw: string): string {
	const t = raw.toUpperCase().replace(/\s+/g, "");
	return /^\d{4}$/.test(t) ? `RTX${t}` : t;
}

function resources(scanner: TextScanner, draft: Draft): void {
	const setCount = (raw: string) => {
		const n = parseNumber(raw);
		const problem = checkRange("resources.gpu_count", n, raw);
		if (problem) draft.errors.push(problem);
		else draft.resources.gpu_count = n;
	};
	const withType = (count: string | undefined, type: string) => {
		if (count !== undefined) setCount(count);
		draft.resources.gpu_type = gpuType(type);
	};
	scanner.take(new RegExp(String.raw`\b${GPU_COUNT}\s*(?:[x×*]\s*)?(?:nvidia\s+)?(${GPU_TYPE})(?:s\b|\b)(?:\s*gpus?\b|\s*cards?\b)?`, "gi"), (m) => withType(m[1], m[2]!));
	scanner.take(new RegExp(String.raw`\b(${GPU_TYPE})\s*(?:gpus?\s*)?(?:[x×*]\s*(\d+)\b|(\d+)\s*(?:장|개|대))`, "gi"), (m) => withType(m[2] ?? m[3], m[1]!));
	scanner.take(new RegExp(String.raw`\b${GPU_COUNT}\s*(?:[x×*]\s*)?gpus?\b|\b(?:num_)?gpus?\s*(?:[:=]|count|개수)?\s*(\d+)\s*(?:장|개|대)?|(\d+)\s*(?:장|개|대)의?\s*gpu`, "gi"), (m) =>
		setCount((m[1] ?? m[2] ?? m[3])!),
	);
	scanner.take(new RegExp(String.raw`\b(${GPU_TYPE})s?\b`, "gi"), (m) => withType(undefined, m[1]!));
	scanner.take(/\bon (?:the )?cpu\b(?:[\s-]only)?|\bcpu[\s-]only\b|\bno gpus?\b|\bwithout (?:a |any )?gpus?\b/gi, () => void (draft.resources.gpu_count = 0));
}

// ---- hyperparameters ------------------------------------------------------------------------------------------

type NumericField = Exclude<keyof Hyperparameters, "optimizer">;

const KEYS: Array<[NumericField, string, string?]> = [
	["epochs", String.raw`\b(?:num_epochs|n_epochs|epochs?)\b|에폭(?:\s*수)?|에포크`],
	["learning_rate", String.raw`\b(?:learning[\s_-]*rate|lr0?)\b|학습률|러닝\s*레이트`],
	["batch_size", String.raw`\b(?:batch[\s_-]*size|mini-?batch(?:es)?|batch(?:es)?|bs)\b|배치(?:\s*(?:크기|사이즈))?`],
	["image_size", String.raw`\b(?:image[\s_-]*size|img[\s_-]*size|imgsz|input[\s_-]*size|resolution)\b|이미지\s*(?:크기|사이즈)|해상도`],
	["weight_decay", String.raw`\b(?:weight[\s_-]*decay|wd)\b`],
	["momentum", String.raw`\bmomentum\b|모멘텀`],
	["lora_rank", String.raw`\blora[\s_-]*(?:rank|r)\b|\blora_r\b`, String.raw`\brank\b|\br(?=\s*=)`],
	["lora_alpha", String.raw`\blora[\s_-]*alpha\b`, String.raw`\balpha\b`],
	["max_seq_length", String.raw`\b(?:max(?:imum)?[\s_-]*(?:seq(?:uence)?[\s_-]*)?len(?:gth)?|seq(?:uence)?[\s_-]*len(?:gth)?|context[\s_-]*(?:length|len|window)|max_seq_len(?:gth)?|cutoff[\s_-]*len)\b`],
];

function setNumber(draft: Draft, field: NumericField, raw: string): void {
	const value = parseNumber(raw);
	const problem = checkRange(`hyperparameters.${field}`, value, raw.replace(/−/g, "-"));
	draft.errors = draft.errors.filter((e) => e.field !== `hyperparameters.${field}`);
	if (problem) {
		delete draft.hyperparameters[field];
		draft.errors.push(problem);
	} else draft.hyperparameters[field] = value;
}

function hyperparameters(scanner: TextScanner, draft: Draft): void {
	const lora = /\b(?:q?lora)\b/i.test(scanner.original);
	const keyOf = ([, key, loraOnly]: (typeof KEYS)[number]) => (lora && loraOnly ? `(?:${key}|${loraOnly})` : `(?:${key})`);
	// Key before value first ("batch 32 for 20 epochs": 32 is the batch), then value before key.
	for (const k of KEYS) scanner.take(new RegExp(`${keyOf(k)}${CONNECTOR}${QUOTE}${NUM}${QUOTE}`, "gi"), (m) => setNumber(draft, k[0], m[1]!));
	for (const k of KEYS) scanner.take(new RegExp(`${QUOTE}${NUM}${QUOTE}\\s*-?\\s*${keyOf(k)}`, "gi"), (m) => setNumber(draft, k[0], m[1]!));
	scanner.take(/\b(\d{2,4})\s*[x×]\s*(\d{2,4})\b|\b(\d{2,4})\s*px\b/gi, (m) => setNumber(draft, "image_size", (m[1] ?? m[3])!));
	// "lion" and "lamb" are animals too: only after the word optimizer.
	const setOptimizer = (m: RegExpExecArray) => void (draft.hyperparameters.optimizer = m[1]!.toLowerCase() as Optimizer);
	scanner.take(new RegExp(String.raw`(?:\b(?:optimi[sz]er|opt)\b|옵티마이저)\s*[:=]?\s*(${OPTIMIZERS.join("|")})\b`, "gi"), setOptimizer);
	const plain = OPTIMIZERS.filter((o) => o !== "lion" && o !== "lamb");
	scanner.take(new RegExp(String.raw`\b(${plain.join("|")})\b`, "gi"), setOptimizer);
}

// ---- model sources and tasks ----------------------------------------------------------------------------------

function source(scanner: TextScanner, draft: Draft): void {
	for (const [src, aliases] of Object.entries(SOURCE_ALIASES) as Array<[ModelSource, string[]]>) {
		const re = new RegExp(`\\b(?:${aliases.map((a) => a.replace(/\s+/g, "[\\s_-]*")).join("|")})\\b(?:'s)?`, "gi");
		scanner.take(re, () => void (draft.source = src));
	}
}

const TEXT_NOUNS = "reviews?|tweets?|emails?|e-mails?|texts?|sentences?|comments?|tickets?|messages?|headlines?|documents?|utterances?|posts?|queries";
/** Task phrases, most specific first: "anomaly detection" must be read before "detection". */
const TASK_PATTERNS: Array<[RegExp, TaskType]> = [
	[/\bdetect(?:ing)?\s+anomal\w*|\banomal(?:y|ies|ous)(?:[\s-]+detect(?:ion|or|ing)?)?\b|\b(?:outlier|novelty)\s+detection\b|이상\s*(?:탐지|감지)/gi, "anomaly_detection"],
	[/\bkeypoints?(?:\s+detection)?\b|\bpose(?:\s+estimation)?\b|자세\s*추정|포즈\s*추정/gi, "pose_estimation"],
	[/\binstance[\s-]*seg(?:mentation)?\b|인스턴스\s*(?:세그멘테이션|분할)/gi, "instance_segmentation"],
	[
		new RegExp(String.raw`\b(?:text|sentiment|spam|toxic(?:ity)?|topic|intent|document|email)(?:\s+\w+)?\s+(?:classification|classifier|analysis|detection)\b|\bsentiment\b|\bspam\b|\bclassify(?:ing)?\s+(?:\w+\s+)?(?:${TEXT_NOUNS})\b|텍스트\s*분류|감성\s*분석|감정\s*분석|스팸`, "gi"),
		"text_classification",
	],
	[/\b(?:sft|supervised\s+fine-?tun(?:e|ing)|instruction[\s-]*tun(?:e|ed|ing)|chat\s+model|llm|language\s+model)\b/gi, "llm_sft"],
	[/\bsemantic[\s-]*segment\w*|\bsegment(?:ation|ing|er|s)?\b|\bpixel-?wise\b|\bmasks?\b|세그멘테이션|분할/gi, "segmentation"],
	[/\bobject[\s-]*detection\b|\bdetect(?:ion|ions|or|ors|ing|s)?\b|\bbounding[\s-]*box(?:es)?\b|\bbbox(?:es)?\b|탐지|검출/gi, "detection"],
	[/\bclassif(?:y|ying|ied|ication|ier)\b|\bcategori[sz]e\b|\brecogni[sz]e\b|\bsort\b|\btell\s+apart\b|\bdistinguish\b|분류/gi, "classification"],
];

function tasks(scanner: TextScanner, draft: Draft): void {
	for (const [re, task] of TASK_PATTERNS) scanner.take(re, () => void (draft.tasks.includes(task) || draft.tasks.push(task)));
	if (/\bq?lora\b|파인튜닝\s*lora/i.test(scanner.original)) draft.task_hint = "llm_sft";
}

// ---- classes --------------------------------------------------------------------------------------------------

const CLASS_COUNT = `(\\d+|${COUNT_WORD_SOURCE})`;
const CLASS_NOUNS = "classes|class|categories|category|kinds|types|species|breeds|labels|levels|way";
const NOT_CLASS_NAMES = /^(?:dataset|data|epochs?|batch|lr|learning|image|model|gpus?|optimi[sz]er|weight|classes|labels)\b/i;
const LIST_STOP = /\s(?:for|with|using|on|from|in|at|via|to|by|into|as|please|then|so|which|that)\s/i;

/**
 * "siamese, persian and bengal on ds-9" → the items and how many characters they span, or no items when the
 * text does not read as a short list of names.
 */
export function splitList(raw: string): { items: string[]; length: number } {
	const stop = LIST_STOP.exec(` ${raw} `);
	const cut = raw.slice(0, stop ? Math.max(0, stop.index) : raw.length).split(MASK)[0]!;
	const parts = cut
		.split(/\s*(?:,|;|\/|&|\bor\b|\band\b|\bvs\.?|\bversus\b)\s*/i)
		.map((s) => s.trim().replace(/^(?:the|a|an)\s+/i, "").replace(/[.!?]+$/, ""));
	// The list ends where the request goes on ("licence plates, dataset ds-9").
	const end = parts.findIndex((s) => NOT_CLASS_NAMES.test(s));
	const items = (end < 0 ? parts : parts.slice(0, end)).filter((s) => s.length > 0);
	const short = items.every((s) => s.split(/\s+/).length <= 2 && !/^\d/.test(s) && !/[=:]/.test(s));
	return { items: items.length >= 2 && short ? items : [], length: cut.length };
}

const LIST_TRIGGERS: RegExp[] = [
	new RegExp(String.raw`\b\d+\s+(?:${CLASS_NOUNS})\s+of\s+[\w\s-]{1,30}?:\s*([^.;\n?!]+)`, "gid"),
	/\d+\s*(?:종|가지|개)[^:\n]{0,20}:\s*([^.;\n?!]+)/gid,
	/\b(?:classes|labels|categories|class names)\s*(?:are|:|=|include|including)?\s*([^.;\n?!(]+)/gid,
	/\b(?:into|as)\s+([^.;\n?!]+)/gid,
	/\(([^()]+)\)/gid,
	/\b([a-z][\w-]*)\s+(?:vs\.?|versus)\s+([a-z][\w-]*)/gid,
	/(?<![\w/])([a-z][\w-]*(?:\/[a-z][\w-]*)+)(?![\w/])/gid,
	/\b(?:detect(?:ing)?|find(?:ing)?|recogni[sz]e|classify(?:ing)?|segment(?:ing)?|segmentation\s+of|detection\s+of|(?:model|detector|classifier)\s+for)\s+([^.;\n?!]+)/gid,
];

function classes(scanner: TextScanner, draft: Draft): void {
	for (const re of LIST_TRIGGERS) {
		for (const m of scanner.text.matchAll(re) as IterableIterator<RegExpExecArray>) {
			const start = m.indices![1]![0];
			const list = m[2] !== undefined ? { items: [m[1]!, m[2]], length: m.indices![2]![1] - start } : splitList(m[1]!);
			if (list.items.length < 2) continue;
			draft.class_names = list.items;
			scanner.consume(start, list.length);
			break;
		}
		if (draft.class_names) break;
	}
	scanner.take(new RegExp(String.raw`\b${CLASS_COUNT}[\s-]+(?:[a-z]+\s+)?(?:${CLASS_NOUNS})\b|클래스\s*(\d+)\s*개|(\d+)\s*개\s*(?:의\s*)?클래스|(\d+)\s*(?:종|가지)`, "gi"), (m) => {
		const raw = (m[1] ?? m[2] ?? m[3] ?? m[4])!;
		const problem = checkRange("num_classes", parseNumber(raw), raw);
		if (problem) draft.errors.push(problem);
		else draft.num_classes = parseNumber(raw);
	});
	scanner.take(/\bbinary\b|이진/gi, () => void (draft.num_classes ??= 2));
}

/** What one message says, with nothing inferred. */
export function extractDraft(text: string): Draft {
	const scanner = new TextScanner(text.normalize("NFC"));
	const draft = emptyDraft();
	datasetFromLocation(scanner, draft);
	resources(scanner, draft);
	hyperparameters(scanner, draft);
	source(scanner, draft);
	const models = scanModels(scanner);
	draft.models = models.mentions;
	if (models.ambiguous) draft.ambiguous_model = models.ambiguous;
	if (models.unknown) draft.unknown_model = models.unknown;
	datasetFromName(scanner, draft);
	classes(scanner, draft);
	tasks(scanner, draft);
	return draft;
}

/** One message → a TrainingIntent (a conversation goes through `continueSession`). */
export function parseIntent(text: string): TrainingIntent {
	return resolveDraft(extractDraft(text));
}
