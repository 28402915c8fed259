import { posix } from "node:path";
import type { Dataset } from "../dataset";
import { isImageFile } from "../dataset";
import { checkImageFile } from "../image-check";
import type { Problems } from "../problems";
import { text, type ReadContext, type Written } from "./context";
import { readClassNames } from "./yolo-names";

/**
 * ImageNet-style folders: <class>/<image>, optionally under train/, val/ or test/. The folder name is the image's
 * class; an optional classes.txt (which the writer creates) keeps the order and the classes without images. Written from a detection dataset, an image goes to the folder of its one class; an image whose boxes
 * name several classes (or none) cannot be placed and is reported.
 */
const SPLITS = new Set(["train", "val", "valid", "validation", "test"]);

const isSplit = (folder: string) => SPLITS.has(folder.toLowerCase());

/** Whether the dataset keeps its class folders inside split folders (train/cat/a.png). */
const usesSplits = (paths: readonly string[]) => paths.some((p) => p.split("/").length > 2 && isSplit(p.split("/")[0]!));

/** The class folder of an image path, skipping a leading split folder; undefined for images outside any class folder. */
function classOf(path: string, splits: boolean): string | undefined {
	const parts = path.split("/");
	const start = splits && isSplit(parts[0]!) ? 1 : 0;
	return parts.length - start >= 2 ? parts[parts.length - 2] : undefined;
}

export async function readImagenet(ctx: ReadContext): Promise<Dataset> {
	const { problems } = ctx;
	const dataset: Dataset = { format: "imagenet", images: [], categories: [], annotations: [] };
	const images = ctx.paths.filter(isImageFile);
	const splits = usesSplits(images);
	const listed = ctx.paths.includes("classes.txt") ? await readClassNames(["classes.txt"], (p) => ctx.files.read(p), problems) : undefined;
	const names = listed?.names ?? [...new Set(images.map((p) => classOf(p, splits)).filter((c): c is string => c !== undefined))].sort();
	dataset.categories = names.map((name, id) => ({ id, name }));
	const ids = new Map(names.map((n, i) => [n, i]));
	for (const path of images) {
		const cls = classOf(path, splits);
		if (cls === undefined) {
			problems.warning("image_unlabeled", `${path} is not inside a class folder`, { file: path });
			continue;
		}
		if (!ids.has(cls)) {
			problems.error("class_unknown", `the class folder ${JSON.stringify(cls)} is not in classes.txt`, { file: path });
			continue;
		}
		const header = await checkImageFile(ctx.files, path, problems, ctx.limits);
		if (header) dataset.images.push({ id: dataset.images.length + 1, file: path, path, width: header.width, height: header.height, label: ids.get(cls)!, origin: { file: path } });
	}
	return dataset;
}

export function writeImagenet(dataset: Dataset, problems: Problems): Written {
	const names = new Map(dataset.categories.map((c) => [c.id, c.name]));
	const boxClasses = new Map<number, Set<number>>();
	for (const a of dataset.annotations) boxClasses.set(a.image_id, (boxClasses.get(a.image_id) ?? new Set()).add(a.category_id));
	const images = new Map<number, string>();
	const taken = new Set<string>();
	const splits = usesSplits(dataset.images.map((i) => i.file));
	for (const image of dataset.images) {
		const classes = image.label !== undefined ? [image.label] : [...(boxClasses.get(image.id) ?? [])];
		if (classes.length !== 1) {
			problems.warning("label_ambiguous", `${image.file} has ${classes.length ? `boxes of ${classes.length} classes` : "no class"}, so it has no single class folder; left out`, { file: image.path });
			continue;
		}
		const cls = names.get(classes[0]!)!;
		// Keep the path when it already sits in its class folder (a round trip); otherwise <class>/<name>, made unique.
		let target = classOf(image.file, splits) === cls ? image.file : `${cls}/${posix.basename(image.file)}`;
		if (taken.has(target)) target = target.replace(/(\.[^./]+)$/, `-${image.id}$1`);
		taken.add(target);
		images.set(image.id, target);
	}
	return { files: new Map([["classes.txt", text(dataset.categories.map((c) => `${c.name}\n`).join(""))]]), images };
}
