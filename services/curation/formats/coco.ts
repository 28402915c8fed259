import { posix } from "node:path";
import type { Annotation, Box, Category, Dataset, ImageRecord } from "../dataset";
import { polygonBounds } from "../dataset";
import { checkImageFile } from "../image-check";
import { jsonErrorLine } from "../json-position";
import type { Location } from "../problems";
import { resolveInside } from "../safe-path";
import { text, type ReadContext, type Written } from "./context";

/**
 * COCO instances: one JSON (annotations/*.json, or a single *.json at the root) with images, categories and
 * annotations; image files under images/ (file_name is relative to it). Entries are located by their id.
 * An image's whole-image class, which COCO has no field for, travels as an extra `category_id` on the image entry.
 */
export const COCO_IMAGES = "images";
export const COCO_ANNOTATIONS = "annotations/instances.json";

export function cocoJsonPaths(paths: readonly string[]): string[] {
	const nested = paths.filter((p) => /^annotations\/[^/]+\.json$/i.test(p));
	return nested.length ? nested : paths.filter((p) => /^[^/]+\.json$/i.test(p));
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => Number.isSafeInteger(v);
const isSize = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

function polygons(raw: unknown, at: Location, ctx: ReadContext): number[][] | undefined {
	if (raw === undefined) return undefined;
	if (Array.isArray(raw) && raw.every((p) => Array.isArray(p) && p.length >= 6 && p.length % 2 === 0 && p.every((v) => Number.isFinite(v)))) {
		return raw.length ? (raw as number[][]) : undefined;
	}
	ctx.problems.warning("segmentation_dropped", "the segmentation is not a list of polygons (RLE masks are not kept); the box is kept", at);
	return undefined;
}

export async function readCoco(ctx: ReadContext): Promise<Dataset> {
	const { problems } = ctx;
	const candidates = cocoJsonPaths(ctx.paths);
	const empty: Dataset = { format: "coco", images: [], categories: [], annotations: [] };
	if (candidates.length !== 1) {
		problems.error("structure_invalid", candidates.length ? `found ${candidates.length} annotation files (${candidates.join(", ")}); a COCO dataset here has exactly one` : "no COCO annotation file (annotations/*.json)", { file: "." });
		return empty;
	}
	const file = candidates[0]!;
	const source = (await ctx.files.read(file)).toString("utf8");
	let doc: unknown;
	try {
		doc = JSON.parse(source);
	} catch (err) {
		problems.error("syntax_error", `the file is not valid JSON (${err instanceof Error ? err.message : err})`, { file, line: jsonErrorLine(source) });
		return empty;
	}
	if (!isObject(doc) || !["images", "annotations", "categories"].every((k) => Array.isArray(doc[k]))) {
		problems.error("structure_invalid", "a COCO file is an object with the lists images, annotations and categories", { file });
		return empty;
	}
	const entries = (key: string) => (doc as Json)[key] as unknown[];
	/** Checks an entry's id; returns it when usable and not seen before in this list. */
	const idOf = (list: string, entry: unknown, index: number, seen: Set<number>): number | undefined => {
		const id = isObject(entry) ? entry.id : undefined;
		if (!isObject(entry) || !isId(id)) return problems.error("id_invalid", `${list}[${index}] has no integer id`, { file, id: `${list}[${index}]` }), undefined;
		if (seen.has(id)) return problems.error("id_duplicate", `${list} id ${id} is used more than once`, { file, id }), undefined;
		seen.add(id);
		return id;
	};

	const categories: Category[] = [];
	const names = new Set<string>();
	const seenCategories = new Set<number>();
	entries("categories").forEach((c, i) => {
		const id = idOf("categories", c, i, seenCategories);
		if (id === undefined) return;
		const name = (c as Json).name;
		if (typeof name !== "string" || !name.trim()) return problems.error("structure_invalid", `category ${id} has no name`, { file, id });
		if (names.has(name)) return problems.error("category_duplicate", `the category name ${JSON.stringify(name)} is used by more than one category`, { file, id });
		names.add(name);
		categories.push({ id, name });
	});

	const images: ImageRecord[] = [];
	const seenImages = new Set<number>();
	const seenFiles = new Set<string>();
	// Images listed but unusable: their annotations are left out without a second, misleading "no such image".
	const rejected = new Set<number>();
	for (const [i, entry] of entries("images").entries()) {
		const name = isObject(entry) ? entry.file_name : undefined;
		const path = typeof name === "string" ? resolveInside(COCO_IMAGES, name) : undefined;
		const listedBefore = path !== undefined && seenFiles.has(path);
		if (path) seenFiles.add(path);
		const id = idOf("images", entry, i, seenImages);
		if (id === undefined) continue;
		const { width, height, category_id: label } = entry as Json;
		if (!path) {
			problems.error("path_escape", `image ${id} has file_name ${JSON.stringify(name)}, which is not a relative path inside ${COCO_IMAGES}/`, { file, id });
			rejected.add(id);
			continue;
		}
		if (listedBefore) problems.error("id_duplicate", `the file ${path} is listed by more than one image`, { file, id });
		const header = await checkImageFile(ctx.files, path, problems, ctx.limits);
		if (!header) {
			rejected.add(id);
			continue;
		}
		if (!isSize(width) || !isSize(height)) problems.error("size_invalid", `image ${id} has no positive integer width and height`, { file, id });
		else if (width !== header.width || height !== header.height) {
			problems.error("size_mismatch", `image ${id} is declared ${width}×${height} but ${path} is ${header.width}×${header.height}`, { file, id });
		}
		const record: ImageRecord = { id, file: posix.relative(COCO_IMAGES, path), path, width: header.width, height: header.height, origin: { file, id } };
		if (isId(label)) record.label = label;
		images.push(record);
	}

	const annotations: Annotation[] = [];
	const seenAnnotations = new Set<number>();
	entries("annotations").forEach((a, i) => {
		const id = idOf("annotations", a, i, seenAnnotations);
		if (id === undefined) return;
		const { image_id, category_id, bbox, segmentation } = a as Json;
		const at = { file, id };
		if (!isId(image_id) || !isId(category_id)) return problems.error("structure_invalid", `annotation ${id} has no integer image_id and category_id`, at);
		if (rejected.has(image_id)) return;
		const segments = polygons(segmentation, at, ctx);
		let box: Box;
		if (Array.isArray(bbox) && bbox.length === 4) box = bbox as Box;
		else if (segments) box = polygonBounds(segments.flat());
		else return problems.error("bbox_invalid", `annotation ${id} has no bbox [x, y, width, height]`, at);
		annotations.push({ id, image_id, category_id, bbox: box, ...(segments ? { segmentation: segments } : {}), origin: at });
	});

	for (const p of ctx.paths) {
		if (p.startsWith(`${COCO_IMAGES}/`) && !seenFiles.has(p)) problems.warning("image_unlabeled", `${p} is not listed in ${file}`, { file: p });
	}
	return { format: "coco", images, categories, annotations };
}

/** Shoelace formula: COCO's `area` is the object's, not its box's. */
function polygonArea(p: number[]): number {
	let twice = 0;
	for (let i = 0; i < p.length; i += 2) {
		const j = (i + 2) % p.length;
		twice += p[i]! * p[j + 1]! - p[j]! * p[i + 1]!;
	}
	return Math.abs(twice) / 2;
}

export function writeCoco(dataset: Dataset): Written {
	const doc = {
		images: dataset.images.map((i) => ({ id: i.id, file_name: i.file, width: i.width, height: i.height, ...(i.label !== undefined ? { category_id: i.label } : {}) })),
		categories: dataset.categories.map((c) => ({ id: c.id, name: c.name })),
		annotations: dataset.annotations.map((a) => ({
			id: a.id,
			image_id: a.image_id,
			category_id: a.category_id,
			bbox: a.bbox,
			area: a.segmentation ? a.segmentation.reduce((sum, p) => sum + polygonArea(p), 0) : a.bbox[2] * a.bbox[3],
			iscrowd: 0,
			...(a.segmentation ? { segmentation: a.segmentation } : {}),
		})),
	};
	return {
		files: new Map([[COCO_ANNOTATIONS, text(`${JSON.stringify(doc, null, 1)}\n`)]]),
		images: new Map(dataset.images.map((i) => [i.id, `${COCO_IMAGES}/${i.file}`])),
	};
}
