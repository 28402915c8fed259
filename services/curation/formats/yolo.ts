import { posix } from "node:path";
import type { Annotation, Dataset, ImageRecord } from "../dataset";
import { isImageFile, polygonBounds, stem } from "../dataset";
import { checkImageFile } from "../image-check";
import { text, type ReadContext, type Written } from "./context";
import { readClassNames, writeDataYaml } from "./yolo-names";

/**
 * YOLO (Ultralytics): images/**, labels/** mirroring it with one .txt per image, class names in data.yaml or
 * classes.txt. A label line is `class cx cy w h` (normalized to the image) or `class x1 y1 x2 y2 …` (a polygon,
 * the segmentation variant). An image without a label file is a background image (a warning: often a mistake),
 * a label file without an image is an error. Problems point at the label file and line.
 */
export const YOLO_IMAGES = "images";
export const YOLO_LABELS = "labels";
/** Decimals written for normalized coordinates: 1e-6 of the image side, far below a pixel. */
const DECIMALS = 6;

export const labelPathOf = (file: string) => `${YOLO_LABELS}/${stem(file)}.txt`;

export async function readYolo(ctx: ReadContext): Promise<Dataset> {
	const { problems, paths } = ctx;
	const dataset: Dataset = { format: "yolo", images: [], categories: [], annotations: [] };
	const classes = await readClassNames(paths, (p) => ctx.files.read(p), problems);
	if (!classes) return dataset;
	dataset.categories = classes.names.map((name, id) => ({ id, name }));
	const labels = new Set(paths.filter((p) => p.startsWith(`${YOLO_LABELS}/`) && p.endsWith(".txt")));
	const imageByLabel = new Map<string, string>();
	let nextAnnotation = 1;
	for (const path of paths.filter((p) => p.startsWith(`${YOLO_IMAGES}/`) && isImageFile(p))) {
		const file = posix.relative(YOLO_IMAGES, path);
		const labelFile = labelPathOf(file);
		const twin = imageByLabel.get(labelFile);
		if (twin) {
			problems.error("id_duplicate", `${path} and ${twin} would share the label file ${labelFile}`, { file: path });
			continue;
		}
		imageByLabel.set(labelFile, path);
		const header = await checkImageFile(ctx.files, path, problems, ctx.limits);
		if (!header) continue;
		const image: ImageRecord = { id: dataset.images.length + 1, file, path, width: header.width, height: header.height, origin: { file: path } };
		dataset.images.push(image);
		if (!labels.has(labelFile)) {
			problems.warning("image_unlabeled", `${path} has no label file ${labelFile} (read as a background image)`, { file: path });
			continue;
		}
		const lines = (await ctx.files.read(labelFile)).toString("utf8").split(/\r?\n/);
		lines.forEach((raw, i) => {
			const at = { file: labelFile, line: i + 1 };
			const fields = raw.trim().split(/\s+/);
			if (!raw.trim()) return;
			if (fields.length !== 5 && (fields.length < 7 || fields.length % 2 === 0)) {
				return problems.error("syntax_error", `expected "class cx cy w h" or "class x1 y1 x2 y2 x3 y3 …", got ${fields.length} fields`, at);
			}
			if (!/^\d+$/.test(fields[0]!)) return problems.error("syntax_error", `the class ${JSON.stringify(fields[0])} is not a whole number`, at);
			const cls = Number(fields[0]);
			if (cls >= classes.names.length) {
				return problems.error("class_out_of_range", `class ${cls} is not in ${classes.file}, which names ${classes.names.length} classes (0–${classes.names.length - 1})`, at);
			}
			const values = fields.slice(1).map(Number);
			if (!values.every(Number.isFinite)) return problems.error("bbox_invalid", "the coordinates are not all numbers", at);
			const annotation: Annotation = { id: nextAnnotation++, image_id: image.id, category_id: cls, bbox: [0, 0, 0, 0], origin: at };
			if (values.length === 4) {
				const [cx, cy, w, h] = values as [number, number, number, number];
				annotation.bbox = [(cx - w / 2) * image.width, (cy - h / 2) * image.height, w * image.width, h * image.height];
			} else {
				const polygon = values.map((v, k) => v * (k % 2 ? image.height : image.width));
				annotation.bbox = polygonBounds(polygon);
				annotation.segmentation = [polygon];
			}
			dataset.annotations.push(annotation);
		});
	}
	for (const label of labels) {
		if (!imageByLabel.has(label)) problems.error("label_orphan", `${label} has no image in ${YOLO_IMAGES}/ with the same name`, { file: label });
	}
	return dataset;
}

const fixed = (v: number) => String(+v.toFixed(DECIMALS));

/** Boxes as detection lines (polygons would make the box the polygon's bounds, which loses the original box). */
export function writeYolo(dataset: Dataset): Written {
	const index = new Map(dataset.categories.map((c, i) => [c.id, i]));
	const files = new Map<string, Buffer>([["data.yaml", text(writeDataYaml(dataset.categories.map((c) => c.name)))]]);
	const byImage = new Map<number, string[]>(dataset.images.map((i) => [i.id, []]));
	const sizes = new Map(dataset.images.map((i) => [i.id, i]));
	for (const a of dataset.annotations) {
		const img = sizes.get(a.image_id)!;
		const [x, y, w, h] = a.bbox;
		byImage.get(a.image_id)!.push([index.get(a.category_id), fixed((x + w / 2) / img.width), fixed((y + h / 2) / img.height), fixed(w / img.width), fixed(h / img.height)].join(" "));
	}
	for (const image of dataset.images) files.set(labelPathOf(image.file), text(byImage.get(image.id)!.map((l) => `${l}\n`).join("")));
	return { files, images: new Map(dataset.images.map((i) => [i.id, `${YOLO_IMAGES}/${i.file}`])) };
}
