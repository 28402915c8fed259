import { posix } from "node:path";
import type { Dataset, ImageRecord } from "../dataset";
import { isImageFile, stem } from "../dataset";
import { checkImageFile } from "../image-check";
import type { Problems } from "../problems";
import { resolveInside } from "../safe-path";
import { childNamed, childrenNamed, escapeXml, parseXml, XmlError, type XmlElement } from "../xml";
import { text, type ReadContext, type Written } from "./context";
import { readClassNames } from "./yolo-names";

/**
 * Pascal VOC: Annotations/**.xml, one per image, naming its file (relative to JPEGImages/), its size and its
 * objects. Corners are read as pixel-edge coordinates (x = xmin, width = xmax − xmin) and written rounded to whole
 * pixels, as VOC tools expect integers. VOC has no class list; the optional classes.txt (which the writer creates)
 * keeps the order and the classes without objects. Problems point at the XML file and the element's line.
 */
export const VOC_IMAGES = "JPEGImages";
export const VOC_ANNOTATIONS = "Annotations";
/** Annotation files are a few kB; a larger one is refused before parsing. */
const MAX_XML_BYTES = 1_000_000;

interface VocObject {
	name: string;
	corners: number[];
	line: number;
}

/** The fields of one parsed annotation file, or undefined after reporting why it is unusable. */
function readAnnotation(root: XmlElement, file: string, problems: Problems) {
	if (root.name !== "annotation") return problems.error("structure_invalid", `the root element is <${root.name}>, not <annotation>`, { file, line: root.line }), undefined;
	const filename = childNamed(root, "filename");
	if (!filename?.text) return problems.error("structure_invalid", "<filename> is missing", { file, line: root.line }), undefined;
	const size = childNamed(root, "size");
	const dim = (name: string) => Number(size && childNamed(size, name)?.text);
	const objects: VocObject[] = [];
	for (const obj of childrenNamed(root, "object")) {
		const name = childNamed(obj, "name")?.text;
		const box = childNamed(obj, "bndbox");
		if (!name) problems.error("structure_invalid", "an <object> has no <name>", { file, line: obj.line });
		else if (!box) problems.error("bbox_invalid", `the <object> ${JSON.stringify(name)} has no <bndbox>`, { file, line: obj.line });
		else objects.push({ name, corners: ["xmin", "ymin", "xmax", "ymax"].map((k) => Number(childNamed(box, k)?.text || NaN)), line: obj.line });
	}
	return { filename: filename.text, width: dim("width"), height: dim("height"), sizeLine: size?.line ?? root.line, objects };
}

export async function readVoc(ctx: ReadContext): Promise<Dataset> {
	const { problems, paths } = ctx;
	const dataset: Dataset = { format: "voc", images: [], categories: [], annotations: [] };
	const listed = paths.includes("classes.txt") ? await readClassNames(["classes.txt"], (p) => ctx.files.read(p), problems) : undefined;
	const classIds = new Map((listed?.names ?? []).map((n, i) => [n, i]));
	const found = new Set<string>();
	const pending: Array<{ image: ImageRecord; objects: VocObject[]; file: string }> = [];
	const byImage = new Map<string, string>();
	for (const file of paths.filter((p) => p.startsWith(`${VOC_ANNOTATIONS}/`) && p.toLowerCase().endsWith(".xml"))) {
		const bytes = await ctx.files.read(file);
		if (bytes.length > MAX_XML_BYTES) {
			problems.error("structure_invalid", `the annotation file is ${bytes.length.toLocaleString("en-US")} bytes; the limit is ${MAX_XML_BYTES.toLocaleString("en-US")}`, { file });
			continue;
		}
		let root: XmlElement;
		try {
			root = parseXml(bytes.toString("utf8"));
		} catch (err) {
			if (!(err instanceof XmlError)) throw err;
			problems.error(err.forbidden ? "xml_forbidden" : "syntax_error", err.message, { file, line: err.line });
			continue;
		}
		const ann = readAnnotation(root, file, problems);
		if (!ann) continue;
		const path = resolveInside(VOC_IMAGES, ann.filename);
		if (!path) {
			problems.error("path_escape", `<filename> ${JSON.stringify(ann.filename)} is not a relative path inside ${VOC_IMAGES}/`, { file, line: childNamed(root, "filename")!.line });
			continue;
		}
		if (byImage.has(path)) {
			problems.error("id_duplicate", `${path} is already annotated by ${byImage.get(path)}`, { file, line: root.line });
			continue;
		}
		byImage.set(path, file);
		const header = await checkImageFile(ctx.files, path, problems, ctx.limits);
		if (!header) continue;
		if (!(ann.width > 0 && ann.height > 0 && Number.isInteger(ann.width) && Number.isInteger(ann.height))) {
			problems.error("size_invalid", "<size> has no positive integer <width> and <height>", { file, line: ann.sizeLine });
		} else if (ann.width !== header.width || ann.height !== header.height) {
			problems.error("size_mismatch", `<size> says ${ann.width}×${ann.height} but ${path} is ${header.width}×${header.height}`, { file, line: ann.sizeLine });
		}
		for (const o of ann.objects) found.add(o.name);
		pending.push({ image: { id: pending.length + 1, file: posix.relative(VOC_IMAGES, path), path, width: header.width, height: header.height, origin: { file } }, objects: ann.objects, file });
	}
	if (!listed) [...found].sort().forEach((n) => classIds.set(n, classIds.size));
	dataset.categories = [...classIds].map(([name, id]) => ({ id, name }));
	for (const { image, objects, file } of pending) {
		dataset.images.push(image);
		for (const o of objects) {
			const at = { file, line: o.line };
			const category = classIds.get(o.name);
			if (category === undefined) {
				problems.error("class_unknown", `the class ${JSON.stringify(o.name)} is not in classes.txt`, at);
				continue;
			}
			const [x0, y0, x1, y1] = o.corners as [number, number, number, number];
			dataset.annotations.push({ id: dataset.annotations.length + 1, image_id: image.id, category_id: category, bbox: [x0, y0, x1 - x0, y1 - y0], origin: at });
		}
	}
	for (const p of paths) {
		if (p.startsWith(`${VOC_IMAGES}/`) && isImageFile(p) && !byImage.has(p)) problems.warning("image_unlabeled", `${p} has no annotation file in ${VOC_ANNOTATIONS}/`, { file: p });
	}
	return dataset;
}

export function writeVoc(dataset: Dataset): Written {
	const names = new Map(dataset.categories.map((c) => [c.id, c.name]));
	const objects = new Map<number, string[]>(dataset.images.map((i) => [i.id, []]));
	for (const a of dataset.annotations) {
		const [x, y, w, h] = a.bbox;
		const corners = [x, y, x + w, y + h].map(Math.round);
		objects.get(a.image_id)!.push(
			`\t<object>\n\t\t<name>${escapeXml(names.get(a.category_id)!)}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n` +
				["xmin", "ymin", "xmax", "ymax"].map((k, i) => `\t\t\t<${k}>${corners[i]}</${k}>\n`).join("") +
				"\t\t</bndbox>\n\t</object>\n",
		);
	}
	const files = new Map<string, Buffer>([["classes.txt", text(dataset.categories.map((c) => `${c.name}\n`).join(""))]]);
	for (const image of dataset.images) {
		const xml =
			`<annotation>\n\t<folder>${VOC_IMAGES}</folder>\n\t<filename>${escapeXml(image.file)}</filename>\n` +
			`\t<size>\n\t\t<width>${image.width}</width>\n\t\t<height>${image.height}</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n` +
			objects.get(image.id)!.join("") +
			"</annotation>\n";
		files.set(`${VOC_ANNOTATIONS}/${stem(image.file)}.xml`, text(xml));
	}
	return { files, images: new Map(dataset.images.map((i) => [i.id, `${VOC_IMAGES}/${i.file}`])) };
}

