import { editDistance } from "./edit-distance";
import type { ModelSource } from "./intent";
import { CATALOG_INDEX, modelKey, type ModelEntry } from "./model-catalog";
import { MASK, type TextScanner } from "./text-scanner";

/**
 * Finds the models a sentence names: exact names and aliases (over up to four words: "llama 3 8b"), family names
 * ("yolov8" → its default member) and typos within a small edit distance. A typo close to two models is reported
 * as ambiguous, and a model-like word close to none as unknown: neither is ever guessed.
 */

export interface ModelMention {
	name: string;
	source: ModelSource;
	/** The words as written. */
	text: string;
	via: "exact" | "family" | "fuzzy";
	distance: number;
}

export interface ModelScan {
	mentions: ModelMention[];
	/** A word close to several models: the user must pick. */
	ambiguous?: { text: string; candidates: string[] };
	/** A word that looks like a model name (letters and digits after "train", "using" …) but is none. */
	unknown?: string;
}

const MAX_WORDS = 4;
/** Words that look like a model-name typo but are ordinary words of a request. */
const NOT_MODELS = new Set(["efficient", "convnets", "sequence", "segments", "resolution"]);
const MODEL_CUES = new Set(["train", "finetune", "fine-tune", "tune", "using", "use", "with", "model", "backbone", "architecture"]);
const ARTICLES = new Set(["a", "an", "the", "my", "our"]);

interface Word {
	text: string;
	key: string;
	start: number;
	end: number;
}

function words(text: string): Word[] {
	const out: Word[] = [];
	for (const m of text.matchAll(/[^\s,;:()[\]{}"'“”!?]+/g)) {
		if (m[0].includes(MASK)) continue;
		const t = m[0].replace(/\.+$/, "");
		out.push({ text: t, key: modelKey(t), start: m.index!, end: m.index! + t.length });
	}
	return out;
}

function exact(key: string): { entry: ModelEntry; via: "exact" | "family" } | undefined {
	const entry = CATALOG_INDEX.byKey.get(key)?.[0];
	if (entry) return { entry, via: "exact" };
	const family = CATALOG_INDEX.families.get(key);
	return family ? { entry: family, via: "family" } : undefined;
}

/** The allowed distance grows with the length: one typo in a short name, two in a long one. */
function bound(key: string): number {
	return key.length >= 8 ? 2 : 1;
}

function fuzzyCandidates(key: string): { distance: number; names: string[] } | undefined {
	if (key.length < 5 || !/[a-z]/.test(key) || !(/\d/.test(key) || key.length >= 7) || NOT_MODELS.has(key)) return undefined;
	const limit = bound(key);
	let best = limit + 1;
	let names: string[] = [];
	for (const k of CATALOG_INDEX.keys) {
		if (k[0] !== key[0]) continue;
		const d = editDistance(key, k, limit);
		if (d > limit || d > best) continue;
		const name = exact(k)!.entry.name;
		if (d < best) (best = d), (names = []);
		if (!names.includes(name)) names.push(name);
	}
	return names.length ? { distance: best, names } : undefined;
}

function adjacent(text: string, a: Word, b: Word): boolean {
	return /^\s+$/.test(text.slice(a.end, b.start));
}

/** Scans the unconsumed text for models and consumes what it recognises. */
export function scanModels(scanner: TextScanner): ModelScan {
	const text = scanner.text;
	const ws = words(text);
	const scan: ModelScan = { mentions: [] };
	const consumed: Word[] = [];
	for (let i = 0; i < ws.length; ) {
		let hit: { n: number; entry: ModelEntry; via: "exact" | "family" } | undefined;
		for (let n = Math.min(MAX_WORDS, ws.length - i); n >= 1 && !hit; n--) {
			const span = ws.slice(i, i + n);
			if (span.some((w, j) => !w.key || (j > 0 && !adjacent(text, span[j - 1]!, w)))) continue;
			const found = exact(span.map((w) => w.key).join(""));
			if (found) hit = { n, ...found };
		}
		if (hit) {
			const span = ws.slice(i, i + hit.n);
			const first = span[0]!;
			const last = span[hit.n - 1]!;
			scan.mentions.push({ name: hit.entry.name, source: hit.entry.source, text: text.slice(first.start, last.end), via: hit.via, distance: 0 });
			consumed.push(...span);
			i += hit.n;
			continue;
		}
		const w = ws[i]!;
		const fuzzy = fuzzyCandidates(w.key);
		if (fuzzy?.names.length === 1) {
			const entry = exact(modelKey(fuzzy.names[0]!))!.entry;
			scan.mentions.push({ name: entry.name, source: entry.source, text: w.text, via: "fuzzy", distance: fuzzy.distance });
			consumed.push(w);
		} else if (fuzzy) {
			scan.ambiguous ??= { text: w.text, candidates: fuzzy.names };
			consumed.push(w);
		} else if (/^[a-z]/.test(w.key) && /\d/.test(w.key) && w.key.length >= 4 && cuedAsModel(ws, i)) {
			scan.unknown ??= w.text;
			consumed.push(w);
		}
		i++;
	}
	for (const w of consumed) scanner.consume(w.start, w.end - w.start);
	scan.mentions = dropParts(scan.mentions);
	return scan;
}

function cuedAsModel(ws: Word[], i: number): boolean {
	let j = i - 1;
	while (j >= 0 && ARTICLES.has(ws[j]!.text.toLowerCase())) j--;
	return j >= 0 && MODEL_CUES.has(ws[j]!.text.toLowerCase());
}

/** "faster r-cnn with a resnet50 backbone" names one model: a mention contained in another's name is a part of it. */
function dropParts(mentions: ModelMention[]): ModelMention[] {
	const unique = mentions.filter((m, i) => mentions.findIndex((o) => o.name === m.name) === i);
	return unique.filter((m) => !unique.some((o) => o !== m && modelKey(o.name).includes(modelKey(m.name))));
}
