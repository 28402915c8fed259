import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { convertDataset } from "../services/curation/convert";
import type { Dataset, DatasetFormat } from "../services/curation/dataset";
import { memoryFiles } from "../services/curation/files";
import { readDataset } from "../services/curation/read-dataset";
import { cocoFiles, imagenetFiles, sampleSpec, utf8 } from "./support/datasets";

/** Each edge of a box after VOC's whole-pixel corners; YOLO's 1e-6 of the side is far inside it. */
const EDGE_TOLERANCE = 0.5 + 1e-3;

async function hop(files: Map<string, Buffer>, to: DatasetFormat): Promise<Map<string, Buffer>> {
	const read = await readDataset(memoryFiles(files));
	assert.deepEqual(read.problems, [], `reading before converting to ${to}`);
	const out = await convertDataset(read.dataset, memoryFiles(files), to);
	assert.deepEqual(out.problems, []);
	return out.files;
}

/** Boxes per image file as [class name, left, top, right, bottom], in a stable order. */
function boxesByFile(d: Dataset): Map<string, Array<[string, number, number, number, number]>> {
	const names = new Map(d.categories.map((c) => [c.id, c.name]));
	const files = new Map(d.images.map((i) => [i.id, i.file]));
	const out = new Map<string, Array<[string, number, number, number, number]>>();
	for (const a of d.annotations) {
		const [x, y, w, h] = a.bbox;
		const list = out.get(files.get(a.image_id)!) ?? [];
		list.push([names.get(a.category_id)!, x, y, x + w, y + h]);
		out.set(files.get(a.image_id)!, list);
	}
	for (const list of out.values()) list.sort((p, q) => (p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : p[1] - q[1] || p[2] - q[2]));
	return out;
}

describe("format conversion", () => {
	const spec = sampleSpec(8);

	it("COCO → YOLO → VOC → COCO keeps every class, every image and every box within half a pixel per edge", async () => {
		const source = cocoFiles(spec);
		const yolo = await hop(source, "yolo");
		const voc = await hop(yolo, "voc");
		const back = await hop(voc, "coco");
		const before = (await readDataset(memoryFiles(source))).dataset;
		const after = await readDataset(memoryFiles(back));
		assert.deepEqual(after.problems, []);
		assert.deepEqual(after.dataset.categories.map((c) => c.name), before.categories.map((c) => c.name));
		for (const image of before.images) assert.ok(back.get(`images/${image.file}`)!.equals(source.get(`images/${image.file}`)!), `${image.file} copied byte for byte`);
		const want = boxesByFile(before);
		const got = boxesByFile(after.dataset);
		assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
		let worst = 0;
		for (const [file, boxes] of want) {
			const other = got.get(file)!;
			assert.deepEqual(other.map((b) => b[0]), boxes.map((b) => b[0]), `classes of ${file}`);
			boxes.forEach((b, i) => b.slice(1).forEach((v, k) => (worst = Math.max(worst, Math.abs((other[i]![k + 1] as number) - (v as number))))));
		}
		assert.ok(worst <= EDGE_TOLERANCE, `worst edge error ${worst} px`);
		assert.ok(worst > 0, "the sample boxes have fractional corners, so VOC's rounding shows");
	});

	it("COCO → YOLO → COCO keeps boxes to 1e-6 of the image side", async () => {
		const source = cocoFiles(spec);
		const back = await hop(await hop(source, "yolo"), "coco");
		const want = boxesByFile((await readDataset(memoryFiles(source))).dataset);
		const got = boxesByFile((await readDataset(memoryFiles(back))).dataset);
		for (const [file, boxes] of want) boxes.forEach((b, i) => b.slice(1).forEach((v, k) => assert.ok(Math.abs((got.get(file)![i]![k + 1] as number) - (v as number)) < 64e-6, file)));
	});

	it("keeps classes that have no boxes through YOLO and VOC", async () => {
		const source = cocoFiles({ ...spec, names: [...spec.names, "unused"] });
		const back = await hop(await hop(await hop(source, "yolo"), "voc"), "coco");
		assert.deepEqual((await readDataset(memoryFiles(back))).dataset.categories.map((c) => c.name), ["cat", "dog", "bird", "unused"]);
	});

	it("ImageNet folders → COCO → ImageNet folders keeps each image in its class folder", async () => {
		const source = imagenetFiles(spec);
		const back = await hop(await hop(source, "coco"), "imagenet");
		const images = [...back.keys()].filter((k) => k !== "classes.txt");
		assert.deepEqual(images.sort(), [...source.keys()].sort());
	});

	it("keeps polygons in COCO, says when a target format cannot hold them, and does not guess a class folder", async () => {
		const files = cocoFiles(spec);
		const doc = JSON.parse(files.get("annotations/instances_train.json")!.toString());
		doc.annotations[0].segmentation = [[10, 10, 20, 10, 20, 20, 10, 20]];
		files.set("annotations/instances_train.json", utf8(JSON.stringify(doc)));
		const read = await readDataset(memoryFiles(files));
		const coco = await convertDataset(read.dataset, memoryFiles(files), "coco");
		assert.deepEqual(JSON.parse(coco.files.get("annotations/instances.json")!.toString()).annotations[0].segmentation, [[10, 10, 20, 10, 20, 20, 10, 20]]);
		const yolo = await convertDataset(read.dataset, memoryFiles(files), "yolo");
		assert.deepEqual(yolo.problems.map((p) => p.code), ["segmentation_dropped"]);
		const folders = await convertDataset(read.dataset, memoryFiles(files), "imagenet");
		const mixed = spec.images.filter((i) => new Set(i.boxes.map((b) => b.cls)).size > 1).map((i) => `images/${i.file}`);
		assert.ok(mixed.length > 0);
		assert.deepEqual(folders.problems.filter((p) => p.code === "label_ambiguous").map((p) => p.file), mixed);
	});
});
