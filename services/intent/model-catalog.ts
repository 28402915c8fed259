import type { Hyperparameters, ModelSource, TaskType } from "./intent";

/**
 * The shipped model catalog: which models exist, under which names people write them, what each can be trained
 * for and with which defaults. Shipped as code so the parser works offline; nothing here is downloaded.
 */

export interface ModelEntry {
	/** The name the model's library knows it by (`timm.create_model`, a Hub id, an Ultralytics weight). */
	name: string;
	source: ModelSource;
	/** What it can be fine-tuned for; the first is what its name implies when the text names no task. */
	tasks: TaskType[];
	/** Other spellings; matched after normalisation (case, separators, `+` → plus). */
	aliases: string[];
	/** Size class: decides the default CPU and memory of a run. */
	scale: "small" | "medium" | "llm";
	defaults: Hyperparameters;
}

/** Normalised key of a name: lower case, `+` spelled out, separators dropped ("ResNet-50" → "resnet50"). */
export function modelKey(name: string): string {
	return name.toLowerCase().replace(/\+/g, "plus").replace(/[^a-z0-9]/g, "");
}

const TASK_DEFAULTS: Record<TaskType, Hyperparameters> = {
	classification: { epochs: 30, learning_rate: 1e-4, batch_size: 32, optimizer: "adamw", image_size: 224, weight_decay: 0.05 },
	detection: { epochs: 50, learning_rate: 0.01, batch_size: 16, optimizer: "sgd", image_size: 640, momentum: 0.937 },
	segmentation: { epochs: 50, learning_rate: 0.01, batch_size: 8, optimizer: "sgd", image_size: 512, momentum: 0.9 },
	instance_segmentation: { epochs: 50, learning_rate: 0.01, batch_size: 8, optimizer: "sgd", image_size: 640, momentum: 0.937 },
	pose_estimation: { epochs: 100, learning_rate: 0.01, batch_size: 16, optimizer: "sgd", image_size: 640 },
	anomaly_detection: { epochs: 1, batch_size: 32, image_size: 256 },
	text_classification: { epochs: 3, learning_rate: 2e-5, batch_size: 16, optimizer: "adamw", weight_decay: 0.01, max_seq_length: 256 },
	llm_sft: { epochs: 3, learning_rate: 2e-4, batch_size: 4, optimizer: "adamw", lora_rank: 16, lora_alpha: 32, max_seq_length: 2048 },
};

function entry(
	name: string,
	source: ModelSource,
	tasks: TaskType[],
	aliases: string[] = [],
	scale: ModelEntry["scale"] = "small",
	overrides: Hyperparameters = {},
): ModelEntry {
	return { name, source, tasks, aliases, scale, defaults: { ...TASK_DEFAULTS[tasks[0]!], ...overrides } };
}

const SIZE_WORDS: Record<string, string> = { n: "nano", s: "small", m: "medium", l: "large", x: "xlarge" };
const ULTRALYTICS_TASKS: Array<[suffix: string, task: TaskType, words: string[], overrides: Hyperparameters]> = [
	["", "detection", ["det", "detect"], {}],
	["-seg", "instance_segmentation", ["seg", "segment", "segmentation"], {}],
	["-cls", "classification", ["cls", "classify", "classification"], { image_size: 224, optimizer: "sgd", learning_rate: 0.01 }],
	["-pose", "pose_estimation", ["pose"], {}],
];

/** yolov8n, yolov8n-seg, yolo11s-cls …: every size × task variant with its spoken aliases ("yolov8 nano seg"). */
function ultralytics(family: string, sizes: string, tasks = ULTRALYTICS_TASKS): ModelEntry[] {
	const spaced = family.replace(/^yolo(v?)/, "yolo $1");
	return tasks.flatMap(([suffix, task, words, overrides]) =>
		[...sizes].map((size) => {
			const base = [`${family}${size}`, `${family} ${SIZE_WORDS[size]}`, `${spaced}${size}`];
			const aliases = suffix ? base.flatMap((b) => words.map((w) => `${b} ${w}`)) : base;
			const scale = size === "l" || size === "x" ? "medium" : "small";
			return entry(`${family}${size}${suffix}`, "ultralytics", [task], aliases, scale, overrides);
		}),
	);
}

const TIMM_CLASSIFIERS: ModelEntry[] = [
	...[18, 34, 50, 101, 152].map((d) => entry(`resnet${d}`, "timm", ["classification"], [`resnet ${d}`, `resnet-${d}`])),
	...[0, 1, 2, 3, 4, 5, 6, 7].map((b) =>
		entry(`efficientnet_b${b}`, "timm", ["classification"], [`efficientnet b${b}`, `effnet b${b}`, `effnet-b${b}`], "small", {
			image_size: [224, 240, 260, 300, 380, 456, 528, 600][b],
		}),
	),
	entry("tf_efficientnetv2_s", "timm", ["classification"], ["efficientnetv2 s", "efficientnet v2 s", "efficientnetv2"], "small", { image_size: 384 }),
	...(["tiny", "small", "base", "large"] as const).map((s) =>
		entry(`vit_${s}_patch16_224`, "timm", ["classification"], [`vit ${s}`, `vit-${s[0]}/16`, `vit ${s[0]}16`, `vit ${s}/16`], s === "large" ? "medium" : "small"),
	),
	...(["tiny", "small", "base", "large"] as const).map((s) => entry(`convnext_${s}`, "timm", ["classification"], [`convnext ${s}`, `convnext-${s[0]}`])),
	entry("mobilenetv3_small_100", "timm", ["classification"], ["mobilenetv3 small", "mobilenet v3 small"]),
	entry("mobilenetv3_large_100", "timm", ["classification"], ["mobilenetv3 large", "mobilenet v3 large", "mobilenetv3"]),
	entry("deit_small_patch16_224", "timm", ["classification"], ["deit small", "deit-s"]),
	entry("deit_base_patch16_224", "timm", ["classification"], ["deit base", "deit-b"]),
	entry("swin_tiny_patch4_window7_224", "timm", ["classification"], ["swin tiny", "swin-t"]),
	entry("swin_base_patch4_window7_224", "timm", ["classification"], ["swin base", "swin-b"]),
	entry("densenet121", "timm", ["classification"], ["densenet 121", "densenet-121"]),
	entry("inception_v3", "timm", ["classification"], ["inception v3", "inceptionv3", "googlenet v3"], "small", { image_size: 299 }),
	entry("regnety_040", "timm", ["classification"], ["regnety 4gf", "regnet y 4gf"]),
];

const TORCHVISION_MODELS: ModelEntry[] = [
	...[18, 34, 50, 101].map((d) => entry(`resnet${d}`, "torchvision", ["classification"], [`resnet ${d}`, `resnet-${d}`])),
	entry("fasterrcnn_resnet50_fpn", "torchvision", ["detection"], ["faster rcnn", "faster r-cnn", "faster rcnn resnet50"], "medium", { epochs: 26, learning_rate: 0.02, batch_size: 8, image_size: 800, momentum: 0.9 }),
	entry("fasterrcnn_mobilenet_v3_large_fpn", "torchvision", ["detection"], ["faster rcnn mobilenet", "faster r-cnn mobilenet"], "small", { epochs: 26, learning_rate: 0.02, batch_size: 8, image_size: 800, momentum: 0.9 }),
	entry("retinanet_resnet50_fpn", "torchvision", ["detection"], ["retinanet", "retina net"], "medium", { epochs: 26, learning_rate: 0.01, batch_size: 8, image_size: 800, momentum: 0.9 }),
	entry("ssd300_vgg16", "torchvision", ["detection"], ["ssd", "ssd300"], "small", { epochs: 120, learning_rate: 0.002, batch_size: 32, image_size: 300, momentum: 0.9 }),
	entry("ssdlite320_mobilenet_v3_large", "torchvision", ["detection"], ["ssdlite", "ssd lite"], "small", { epochs: 120, learning_rate: 0.15, batch_size: 32, image_size: 320, momentum: 0.9 }),
	entry("maskrcnn_resnet50_fpn", "torchvision", ["instance_segmentation"], ["mask rcnn", "mask r-cnn"], "medium", { epochs: 26, learning_rate: 0.02, batch_size: 8, image_size: 800, momentum: 0.9 }),
	entry("keypointrcnn_resnet50_fpn", "torchvision", ["pose_estimation"], ["keypoint rcnn", "keypoint r-cnn"], "medium", { epochs: 46, learning_rate: 0.02, batch_size: 8, image_size: 800 }),
	entry("deeplabv3_resnet50", "torchvision", ["segmentation"], ["deeplabv3", "deeplab v3", "deeplab", "deeplabv3 resnet50"], "medium"),
	entry("deeplabv3_resnet101", "torchvision", ["segmentation"], ["deeplabv3 resnet101", "deeplab v3 resnet101"], "medium"),
	entry("deeplabv3_mobilenet_v3_large", "torchvision", ["segmentation"], ["deeplabv3 mobilenet", "deeplab mobilenet"]),
	entry("fcn_resnet50", "torchvision", ["segmentation"], ["fcn", "fcn resnet50"], "medium"),
	entry("lraspp_mobilenet_v3_large", "torchvision", ["segmentation"], ["lraspp", "lr-aspp"]),
];

const MMDET = { epochs: 12, learning_rate: 0.02, batch_size: 16, optimizer: "sgd", image_size: 1333, momentum: 0.9 } as const;
const MMDETECTION_MODELS: ModelEntry[] = [
	entry("faster-rcnn_r50_fpn_1x_coco", "mmdetection", ["detection"], ["faster rcnn", "faster r-cnn", "faster rcnn r50"], "medium", MMDET),
	entry("retinanet_r50_fpn_1x_coco", "mmdetection", ["detection"], ["retinanet", "retinanet r50"], "medium", MMDET),
	entry("cascade-rcnn_r50_fpn_1x_coco", "mmdetection", ["detection"], ["cascade rcnn", "cascade r-cnn"], "medium", MMDET),
	entry("mask-rcnn_r50_fpn_1x_coco", "mmdetection", ["instance_segmentation"], ["mask rcnn", "mask r-cnn"], "medium", MMDET),
	...(["tiny", "s", "m", "l"] as const).map((s) =>
		entry(`rtmdet_${s}_8xb32-300e_coco`, "mmdetection", ["detection"], [`rtmdet ${s}`, `rtmdet-${s}`, ...(s === "s" ? ["rtmdet"] : [])], "small", {
			epochs: 300,
			learning_rate: 0.004,
			batch_size: 32,
			optimizer: "adamw",
			image_size: 640,
			weight_decay: 0.05,
		}),
	),
	entry("dino-4scale_r50_8xb2-12e_coco", "mmdetection", ["detection"], ["dino", "dino detr", "dino 4scale"], "medium", { ...MMDET, optimizer: "adamw", learning_rate: 1e-4, batch_size: 16 }),
	entry("detr_r50_8xb2-150e_coco", "mmdetection", ["detection"], ["detr r50"], "medium", { ...MMDET, epochs: 150, optimizer: "adamw", learning_rate: 1e-4 }),
];

const HF_VISION: ModelEntry[] = [
	entry("google/vit-base-patch16-224", "huggingface", ["classification"], ["vit-base-patch16-224"]),
	entry("microsoft/resnet-50", "huggingface", ["classification"]),
	entry("facebook/convnext-tiny-224", "huggingface", ["classification"]),
	entry("facebook/detr-resnet-50", "huggingface", ["detection"], ["detr", "detr resnet50", "detr-resnet-50"], "medium", { epochs: 50, learning_rate: 1e-4, batch_size: 8, optimizer: "adamw", image_size: 800, weight_decay: 1e-4 }),
	entry("facebook/detr-resnet-101", "huggingface", ["detection"], ["detr resnet101"], "medium", { epochs: 50, learning_rate: 1e-4, batch_size: 8, optimizer: "adamw", image_size: 800, weight_decay: 1e-4 }),
	...[0, 1, 2, 3, 4, 5].map((b) =>
		entry(`nvidia/mit-b${b}`, "huggingface", ["segmentation"], [`segformer b${b}`, `segformer-b${b}`, `mit b${b}`, ...(b === 0 ? ["segformer"] : [])], b >= 3 ? "medium" : "small", {
			optimizer: "adamw",
			learning_rate: 6e-5,
			weight_decay: 0.01,
		}),
	),
	entry("facebook/mask2former-swin-tiny-coco-instance", "huggingface", ["instance_segmentation"], ["mask2former", "mask2former swin tiny"], "medium", { optimizer: "adamw", learning_rate: 1e-4 }),
];

const HF_TEXT: ModelEntry[] = [
	entry("bert-base-uncased", "huggingface", ["text_classification"], ["bert", "bert base", "bert-base"]),
	entry("bert-base-cased", "huggingface", ["text_classification"], ["bert base cased"]),
	entry("bert-large-uncased", "huggingface", ["text_classification"], ["bert large"], "medium"),
	entry("bert-base-multilingual-cased", "huggingface", ["text_classification"], ["mbert", "multilingual bert"]),
	entry("distilbert-base-uncased", "huggingface", ["text_classification"], ["distilbert", "distil bert", "distilbert base"]),
	entry("roberta-base", "huggingface", ["text_classification"], ["roberta", "roberta base"]),
	entry("roberta-large", "huggingface", ["text_classification"], ["roberta large"], "medium"),
	entry("xlm-roberta-base", "huggingface", ["text_classification"], ["xlm-r", "xlmr", "xlm roberta"]),
	entry("microsoft/deberta-v3-base", "huggingface", ["text_classification"], ["deberta", "deberta v3", "deberta-v3-base", "deberta v3 base"]),
	entry("albert-base-v2", "huggingface", ["text_classification"], ["albert", "albert base"]),
	entry("google/electra-base-discriminator", "huggingface", ["text_classification"], ["electra", "electra base"]),
	entry("klue/bert-base", "huggingface", ["text_classification"], ["klue bert", "klue-bert"]),
	entry("klue/roberta-base", "huggingface", ["text_classification"], ["klue roberta", "klue-roberta"]),
];

function llm(name: string, aliases: string[], overrides: Hyperparameters = {}): ModelEntry {
	return entry(name, "huggingface", ["llm_sft"], aliases, "llm", overrides);
}

const HF_LLMS: ModelEntry[] = [
	llm("meta-llama/Llama-2-7b-hf", ["llama 2 7b", "llama2 7b", "llama-2-7b", "llama 2", "llama2"]),
	llm("meta-llama/Llama-2-13b-hf", ["llama 2 13b", "llama2 13b", "llama-2-13b"]),
	llm("meta-llama/Meta-Llama-3-8B", ["llama 3 8b", "llama3 8b", "llama-3-8b", "meta-llama-3-8b", "llama 3", "llama3"]),
	llm("meta-llama/Meta-Llama-3-8B-Instruct", ["llama 3 8b instruct", "llama3 8b instruct", "llama-3-8b-instruct", "llama 3 instruct"]),
	llm("meta-llama/Llama-3.1-8B", ["llama 3.1 8b", "llama3.1 8b", "llama-3.1-8b", "llama 3.1"]),
	llm("meta-llama/Llama-3.2-1B", ["llama 3.2 1b", "llama3.2 1b", "llama-3.2-1b"]),
	llm("meta-llama/Llama-3.2-3B", ["llama 3.2 3b", "llama3.2 3b", "llama-3.2-3b", "llama 3.2"]),
	llm("mistralai/Mistral-7B-v0.1", ["mistral 7b", "mistral-7b", "mistral"]),
	llm("mistralai/Mistral-7B-Instruct-v0.2", ["mistral 7b instruct", "mistral-7b-instruct", "mistral instruct"]),
	llm("Qwen/Qwen2.5-0.5B", ["qwen2.5 0.5b", "qwen 2.5 0.5b", "qwen2.5-0.5b"]),
	llm("Qwen/Qwen2.5-1.5B", ["qwen2.5 1.5b", "qwen 2.5 1.5b", "qwen2.5-1.5b"]),
	llm("Qwen/Qwen2.5-7B", ["qwen2.5 7b", "qwen 2.5 7b", "qwen2.5-7b", "qwen 7b", "qwen2.5", "qwen"]),
	llm("google/gemma-2b", ["gemma 2b", "gemma-2b", "gemma"]),
	llm("google/gemma-7b", ["gemma 7b", "gemma-7b"]),
	llm("google/gemma-2-9b", ["gemma 2 9b", "gemma2 9b", "gemma-2-9b", "gemma 2"]),
	llm("microsoft/phi-2", ["phi-2", "phi 2", "phi2"]),
	llm("microsoft/Phi-3-mini-4k-instruct", ["phi-3 mini", "phi 3 mini", "phi3 mini", "phi-3", "phi3"]),
	llm("TinyLlama/TinyLlama-1.1B-Chat-v1.0", ["tinyllama", "tiny llama", "tinyllama 1.1b"], { batch_size: 8 }),
	llm("tiiuae/falcon-7b", ["falcon 7b", "falcon-7b", "falcon"]),
	llm("upstage/SOLAR-10.7B-v1.0", ["solar 10.7b", "solar-10.7b", "solar"]),
	llm("gpt2", ["gpt-2", "gpt 2"], { batch_size: 8, max_seq_length: 1024 }),
];

const ANOMALIB = { epochs: 1, batch_size: 32, image_size: 256 } as const;
const ANOMALIB_MODELS: ModelEntry[] = [
	entry("patchcore", "anomalib", ["anomaly_detection"], ["patch core"], "small", ANOMALIB),
	entry("padim", "anomalib", ["anomaly_detection"], [], "small", ANOMALIB),
	entry("efficient_ad", "anomalib", ["anomaly_detection"], ["efficientad", "efficient ad"], "small", { ...ANOMALIB, epochs: 70, batch_size: 1, learning_rate: 1e-4, optimizer: "adam" }),
	entry("fastflow", "anomalib", ["anomaly_detection"], ["fast flow"], "small", { ...ANOMALIB, epochs: 200, learning_rate: 1e-3, optimizer: "adam" }),
	entry("stfpm", "anomalib", ["anomaly_detection"], [], "small", { ...ANOMALIB, epochs: 100, learning_rate: 0.4, optimizer: "sgd" }),
	entry("draem", "anomalib", ["anomaly_detection"], [], "small", { ...ANOMALIB, epochs: 700, learning_rate: 1e-4, optimizer: "adam" }),
	entry("cflow", "anomalib", ["anomaly_detection"], ["cflow-ad"], "small", { ...ANOMALIB, epochs: 50, learning_rate: 1e-4, optimizer: "adam" }),
];

const SMP_MODELS: ModelEntry[] = [
	entry("unet_resnet34", "smp", ["segmentation"], ["unet", "u-net", "unet resnet34"], "small", { optimizer: "adam", learning_rate: 1e-4 }),
	entry("unetplusplus_resnet34", "smp", ["segmentation"], ["unet++", "unet plus plus", "unetplusplus"], "small", { optimizer: "adam", learning_rate: 1e-4 }),
	entry("deeplabv3plus_resnet50", "smp", ["segmentation"], ["deeplabv3+", "deeplab v3+", "deeplabv3 plus", "deeplab v3 plus"], "medium", { optimizer: "adam", learning_rate: 1e-4 }),
	entry("fpn_resnet34", "smp", ["segmentation"], ["fpn resnet34"], "small", { optimizer: "adam", learning_rate: 1e-4 }),
];

/**
 * Every model, in order of preference: when a name exists in several libraries (resnet50 in timm and torchvision,
 * Faster R-CNN in torchvision and MMDetection) and the text names no library, the first one wins.
 */
export const MODEL_CATALOG: readonly ModelEntry[] = [
	...ultralytics("yolov8", "nsmlx"),
	...ultralytics("yolo11", "nsmlx"),
	...ultralytics("yolov5", "nsmlx", ULTRALYTICS_TASKS.slice(0, 1)),
	entry("rtdetr-l", "ultralytics", ["detection"], ["rt-detr", "rt detr", "rtdetr", "rt-detr l"], "medium"),
	entry("rtdetr-x", "ultralytics", ["detection"], ["rt-detr x"], "medium"),
	...TIMM_CLASSIFIERS,
	...TORCHVISION_MODELS,
	...MMDETECTION_MODELS,
	...HF_VISION,
	...HF_TEXT,
	...HF_LLMS,
	...ANOMALIB_MODELS,
	...SMP_MODELS,
];

/**
 * Family names that stand for one member ("yolov8" → yolov8n, "resnet" → resnet50): matched as a guess, so the
 * intent notes it and its confidence drops.
 */
export const FAMILY_DEFAULTS: Readonly<Record<string, string>> = {
	yolo: "yolov8n",
	yolov8: "yolov8n",
	yolo11: "yolo11n",
	yolov11: "yolo11n",
	yolov5: "yolov5n",
	resnet: "resnet50",
	efficientnet: "efficientnet_b0",
	effnet: "efficientnet_b0",
	vit: "vit_base_patch16_224",
	convnext: "convnext_tiny",
	mobilenet: "mobilenetv3_large_100",
	deit: "deit_small_patch16_224",
	swin: "swin_tiny_patch4_window7_224",
	densenet: "densenet121",
	rtmdet: "rtmdet_s_8xb32-300e_coco",
};

/** The model used when the text names a task but no model (none for llm_sft: the base LLM is the user's choice). */
export const TASK_DEFAULT_MODELS: Readonly<Partial<Record<TaskType, string>>> = {
	classification: "resnet50",
	detection: "yolov8n",
	segmentation: "deeplabv3_resnet50",
	instance_segmentation: "yolov8n-seg",
	pose_estimation: "yolov8n-pose",
	anomaly_detection: "patchcore",
	text_classification: "distilbert-base-uncased",
};

/** How a library is written in a sentence. */
export const SOURCE_ALIASES: Readonly<Record<ModelSource, string[]>> = {
	timm: ["timm", "pytorch image models"],
	torchvision: ["torchvision", "torch vision"],
	ultralytics: ["ultralytics"],
	mmdetection: ["mmdetection", "mmdet", "openmmlab"],
	huggingface: ["huggingface", "hugging face", "hf", "transformers", "hf hub"],
	anomalib: ["anomalib"],
	smp: ["smp", "segmentation_models_pytorch", "segmentation models pytorch"],
};

/** The trainer image of each library (Kubernetes runtime); the run's command is the same for all. */
export const SOURCE_IMAGES: Readonly<Record<ModelSource, string>> = {
	timm: "savassan/trainer-timm:0.1.0",
	torchvision: "savassan/trainer-torchvision:0.1.0",
	ultralytics: "savassan/trainer-ultralytics:0.1.0",
	mmdetection: "savassan/trainer-mmdetection:0.1.0",
	huggingface: "savassan/trainer-huggingface:0.1.0",
	anomalib: "savassan/trainer-anomalib:0.1.0",
	smp: "savassan/trainer-smp:0.1.0",
};

export interface CatalogIndex {
	/** Normalised name or alias → the entries it names, in catalog order. */
	byKey: Map<string, ModelEntry[]>;
	/** Normalised family name → its default entry. */
	families: Map<string, ModelEntry>;
	/** Every key of `byKey` and `families`, for fuzzy matching. */
	keys: string[];
}

function buildIndex(catalog: readonly ModelEntry[]): CatalogIndex {
	const byKey = new Map<string, ModelEntry[]>();
	for (const e of catalog) {
		for (const key of new Set([e.name, e.name.split("/").pop()!, ...e.aliases].map(modelKey))) {
			const list = byKey.get(key) ?? [];
			list.push(e);
			byKey.set(key, list);
		}
	}
	const families = new Map<string, ModelEntry>();
	for (const [family, name] of Object.entries(FAMILY_DEFAULTS)) {
		const target = byKey.get(modelKey(name))?.[0];
		if (!target) throw new Error(`family ${family} points at ${name}, which is not in the catalog`);
		if (!byKey.has(modelKey(family))) families.set(modelKey(family), target);
	}
	for (const [task, name] of Object.entries(TASK_DEFAULT_MODELS)) {
		if (!byKey.get(modelKey(name))?.some((e) => e.tasks.includes(task as TaskType))) {
			throw new Error(`the default ${task} model ${name} is not a ${task} model of the catalog`);
		}
	}
	return { byKey, families, keys: [...byKey.keys(), ...families.keys()] };
}

export const CATALOG_INDEX: CatalogIndex = buildIndex(MODEL_CATALOG);

/** The catalog entry of `name` (a canonical name or alias), preferring `source` when given. */
export function findModel(name: string, source?: ModelSource): ModelEntry | undefined {
	const key = modelKey(name);
	const entries = CATALOG_INDEX.byKey.get(key) ?? (CATALOG_INDEX.families.has(key) ? [CATALOG_INDEX.families.get(key)!] : []);
	return source ? entries.find((e) => e.source === source) : entries[0];
}
