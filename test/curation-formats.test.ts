import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memoryFiles } from "../services/curation/files";
import { detectFormat } from "../services/curation/detect";
import { readDataset, type ReadResult } from "../services/curation/read-dataset";
import { parseXml, XmlError } from "../services/curation/xml";
import { parseDataYaml } from "../services/curation/formats/yolo-names";
import { Problems, type Problem, type ProblemCode } from "../services/curation/problems";
import { cocoFiles, drawImage, encodePng, imagenetFiles, sampleSpec, utf8, vocFiles, vocXml, yoloFiles } from "./support/datasets";

const read = (files: Map<string, Buffer>) => readDataset(memoryFiles(files));

/** The one problem with this code; fails listing every problem when there is none or several. */
function only(result: ReadResult, code: ProblemCode): Problem {
	const found = result.problems.filter((p) => p.code === code);
	assert.equal(found.length, 1, `expected one ${code}, got: ${JSON.stringify(result.problems, null, 1)}`);
	return found[0]!;
}

function clean(result: ReadResult) {
	assert.deepEqual(result.problems, []);
	assert.equal(result.valid, true);
}

const spec = sampleSpec(6);
const boxCount = spec.images.reduce((n, i) => n + i.boxes.length, 0);
/** A PNG whose IHDR claims a size the decoder would choke on. */
function hugePng(): Buffer {
	const png = encodePng(drawImage(8, 8, 1));
	png.writeUInt32BE(100_000, 16);
	png.writeUInt32BE(100_000, 20);
	return png;
}

describe("COCO", () => {
	const coco = () => cocoFiles(spec);
	const edit = (mutate: (doc: any) => void) => {
		const files = coco();
		const doc = JSON.parse(files.get("annotations/instances_train.json")!.toString());
		mutate(doc);
		files.set("annotations/instances_train.json", utf8(JSON.stringify(doc)));
		return files;
	};

	it("reads a valid dataset without a problem and keeps every box", async () => {
		const r = await read(coco());
		clean(r);
		assert.equal(r.format, "coco");
		assert.equal(r.dataset.images.length, 6);
		assert.deepEqual(r.dataset.categories.map((c) => c.name), spec.names);
		assert.deepEqual(r.dataset.annotations.map((a) => a.bbox), spec.images.flatMap((i) => i.boxes.map((b) => b.box)));
	});

	it("reports duplicate ids, dangling references and bad boxes by id", async () => {
		const files = edit((doc) => {
			doc.images.push({ ...doc.images[0], file_name: "extra.png" });
			doc.annotations[0].image_id = 99;
			doc.annotations[1].category_id = 42;
			doc.annotations[2].bbox = [60, 10, 10, 10];
			doc.annotations[3].bbox[2] = -4;
			doc.annotations[4].id = doc.annotations[5].id;
		});
		files.set("images/extra.png", encodePng(drawImage(8, 8, 3)));
		const r = await read(files);
		const file = "annotations/instances_train.json";
		assert.deepEqual(
			r.problems.filter((p) => p.code === "id_duplicate"),
			[
				{ severity: "error", code: "id_duplicate", message: "images id 1 is used more than once", file, id: 1 },
				{ severity: "error", code: "id_duplicate", message: "annotations id 6 is used more than once", file, id: 6 },
			],
		);
		assert.deepEqual([only(r, "image_missing").id, only(r, "image_missing").message], [1, "annotation 1 refers to image 99, which does not exist"]);
		assert.equal(only(r, "category_missing").id, 2);
		assert.equal(only(r, "bbox_outside_image").id, 3);
		assert.equal(only(r, "bbox_not_positive").id, 4);
		assert.equal(r.problems.length, 6, "nothing else is reported");
		assert.equal(r.dataset.annotations.length, boxCount - 5);
		assert.equal(r.valid, false);
	});

	it("refuses a file_name that leaves the image folder", async () => {
		const r = await read(edit((doc) => (doc.images[0].file_name = "../../etc/passwd")));
		assert.match(only(r, "path_escape").message, /\.\.\/\.\.\/etc\/passwd/);
		assert.equal(only(r, "path_escape").id, 1);
		assert.ok(!r.dataset.images.some((i) => i.path.includes("passwd")));
	});

	it("reports a declared size that differs from the image, a missing file and an unlisted one", async () => {
		const files = edit((doc) => (doc.images[2].width = 100));
		files.delete("images/img_004.png");
		files.set("images/extra.png", encodePng(drawImage(8, 8, 3)));
		const r = await read(files);
		assert.match(only(r, "size_mismatch").message, /declared 100×48 but images\/img_002\.png is 64×48/);
		assert.equal(only(r, "size_mismatch").id, 3);
		assert.equal(only(r, "image_missing").file, "images/img_004.png");
		assert.ok(!r.dataset.annotations.some((a) => a.image_id === 5), "the missing image's boxes are left out, not reported again");
		assert.deepEqual([only(r, "image_unlabeled").severity, only(r, "image_unlabeled").file], ["warning", "images/extra.png"]);
	});

	it("gives the line of a JSON syntax error", async () => {
		const files = coco();
		files.set("annotations/instances_train.json", utf8('{\n "images": [],\n "annotations": [,],\n "categories": []\n}'));
		const p = only(await read(files), "syntax_error");
		assert.equal(p.line, 3);
	});
});

describe("YOLO", () => {
	const label = (i: number) => `labels/img_00${i}.txt`;

	it("reads a valid dataset without a problem", async () => {
		const r = await read(yoloFiles(spec));
		clean(r);
		assert.equal(r.format, "yolo");
		assert.equal(r.dataset.annotations.length, boxCount);
		const first = r.dataset.annotations[0]!;
		spec.images[0]!.boxes[0]!.box.forEach((v, k) => assert.ok(Math.abs(first.bbox[k]! - v) < 1e-3, `coordinate ${k}: ${first.bbox[k]} vs ${v}`));
	});

	it("reports class ids beyond the names, boxes outside or empty and malformed lines, with file and line", async () => {
		const files = yoloFiles(spec);
		files.set(label(1), utf8("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n"));
		files.set(label(2), utf8("0 0.5 0.5 0.2 0.2\n\n1 0.9 0.5 0.4 0.2\n2 0.5 0.5 0 0.2\n1 0.5 0.5\n"));
		const r = await read(files);
		assert.deepEqual([only(r, "class_out_of_range").file, only(r, "class_out_of_range").line], [label(1), 2]);
		assert.match(only(r, "class_out_of_range").message, /names 3 classes \(0–2\)/);
		assert.deepEqual([only(r, "bbox_outside_image").file, only(r, "bbox_outside_image").line], [label(2), 3]);
		assert.deepEqual([only(r, "bbox_not_positive").file, only(r, "bbox_not_positive").line], [label(2), 4]);
		assert.deepEqual([only(r, "syntax_error").file, only(r, "syntax_error").line], [label(2), 5]);
	});

	it("warns about an image without a label file and refuses a label file without an image", async () => {
		const files = yoloFiles(spec);
		files.delete(label(3));
		files.set("labels/ghost.txt", utf8("0 0.5 0.5 0.1 0.1\n"));
		const r = await read(files);
		assert.deepEqual([only(r, "image_unlabeled").severity, only(r, "image_unlabeled").file], ["warning", "images/img_003.png"]);
		assert.deepEqual([only(r, "label_orphan").severity, only(r, "label_orphan").file], ["error", "labels/ghost.txt"]);
		assert.equal(r.dataset.images.length, 6, "the unlabeled image is still a (background) image");
	});

	it("checks nc against names, and needs names", async () => {
		const files = yoloFiles(spec);
		files.set("data.yaml", utf8("path: .\nnc: 4\nnames: [cat, dog, bird]\n"));
		const p = only(await read(files), "names_count_mismatch");
		assert.deepEqual([p.file, p.line], ["data.yaml", 2]);
		files.delete("data.yaml");
		assert.equal(only(await read(files), "names_missing").file, ".");
		files.set("classes.txt", utf8("cat\ndog\nbird\n"));
		clean(await read(files));
	});

	it("reads the data.yaml forms Ultralytics writes", () => {
		const forms = [
			"names:\n  - cat\n  - 'dog'\n  - \"bird\"  # comment\n",
			"names:\n  0: cat\n  1: dog\n  2: bird\nnc: 3\n",
			"names: {0: cat, 1: dog, 2: bird}\n",
			"names: ['cat', \"dog\", bird]\ndownload: |\n  some script: here\n",
		];
		for (const yaml of forms) {
			const problems = new Problems();
			assert.deepEqual(parseDataYaml(yaml, "data.yaml", problems), ["cat", "dog", "bird"], yaml);
			assert.deepEqual(problems.list, []);
		}
		const problems = new Problems();
		assert.equal(parseDataYaml("names:\n  0: cat\n  2: dog\n", "data.yaml", problems), undefined);
		assert.equal(problems.list[0]!.code, "syntax_error");
	});

	it("reports a truncated image and a huge declared size instead of decoding them", async () => {
		const files = yoloFiles(spec);
		const png = files.get("images/img_000.png")!;
		files.set("images/img_000.png", png.subarray(0, png.length - 30));
		files.set("images/img_001.png", hugePng());
		const r = await read(files);
		assert.equal(only(r, "image_corrupt").file, "images/img_000.png");
		assert.match(only(r, "image_too_large").message, /100000×100000/);
		assert.equal(r.dataset.images.length, 4);
	});
});

describe("Pascal VOC", () => {
	const vocSpec = sampleSpec(4, "jpg");
	const xml = "Annotations/img_001.xml";

	it("reads a valid dataset without a problem", async () => {
		const r = await read(vocFiles(vocSpec));
		clean(r);
		assert.equal(r.format, "voc");
		assert.deepEqual(r.dataset.annotations.map((a) => a.bbox), vocSpec.images.flatMap((i) => i.boxes.map((b) => b.box)));
	});

	it("reports size mismatches, reversed corners, unknown files and path escapes with the element's line", async () => {
		const files = vocFiles(vocSpec);
		const original = vocXml(vocSpec.images[1]!, vocSpec.names);
		files.set(xml, utf8(original.replace("<width>48</width>", "<width>50</width>").replace(/<xmax>[\d.]+<\/xmax>/, "<xmax>1</xmax>")));
		files.set("Annotations/img_002.xml", utf8(vocXml(vocSpec.images[2]!, vocSpec.names).replace("img_002.jpg", "../../etc/passwd")));
		files.set("Annotations/img_003.xml", utf8(vocXml(vocSpec.images[3]!, vocSpec.names).replace("img_003.jpg", "missing.jpg")));
		const r = await read(files);
		assert.deepEqual([only(r, "size_mismatch").file, only(r, "size_mismatch").line], [xml, 5]);
		assert.deepEqual([only(r, "bbox_not_positive").file, only(r, "bbox_not_positive").line], [xml, 10]);
		assert.deepEqual([only(r, "path_escape").file, only(r, "path_escape").line], ["Annotations/img_002.xml", 4]);
		assert.equal(only(r, "image_missing").file, "JPEGImages/missing.jpg");
		assert.deepEqual(r.problems.filter((p) => p.code === "image_unlabeled").map((p) => p.file).sort(), ["JPEGImages/img_002.jpg", "JPEGImages/img_003.jpg"]);
	});

	it("refuses a DOCTYPE, custom entities and malformed XML without expanding anything", async () => {
		const laughs = '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n <!ENTITY lol2 "&lol;&lol;&lol;&lol;">\n]>\n<annotation><filename>&lol2;</filename></annotation>';
		const external = '<annotation>\n<filename>&xxe;</filename>\n</annotation>';
		const cases: Array<[string, ProblemCode, number]> = [
			[laughs, "xml_forbidden", 2],
			[external, "xml_forbidden", 2],
			["<annotation>\n  <filename>a.jpg</filename>\n  <size>\n</annotation>", "syntax_error", 4],
			['<annotation a="1" a="2"></annotation>', "syntax_error", 1],
		];
		for (const [source, code, line] of cases) {
			const files = vocFiles(vocSpec);
			files.set(xml, utf8(source));
			const p = only(await read(files), code);
			assert.deepEqual([p.file, p.line], [xml, line], source);
		}
	});

	it("parses the five predefined entities, numeric references, CDATA and comments", () => {
		const root = parseXml('<?xml version="1.0"?>\n<!-- c -->\n<a x="&quot;1&quot;"><b>&lt;&amp;&#65;&#x42;<![CDATA[<c>]]></b><d/></a>');
		assert.equal(root.attributes.x, '"1"');
		assert.equal(root.children[0]!.text, "<&AB<c>");
		assert.equal(root.children[1]!.name, "d");
		assert.throws(() => parseXml("<a>&amp</a>"), XmlError);
		assert.throws(() => parseXml(`${"<a>".repeat(40)}${"</a>".repeat(40)}`), /nested deeper/);
	});
});

describe("ImageNet folders", () => {
	it("reads class folders under a split folder, warns about loose images and reports damaged ones", async () => {
		const files = imagenetFiles(spec);
		const r0 = await read(files);
		clean(r0);
		assert.equal(r0.format, "imagenet");
		assert.deepEqual(r0.dataset.categories.map((c) => c.name), [...new Set(spec.images.map((i) => spec.names[i.boxes[0]!.cls]!))].sort());
		const cat = r0.dataset.categories.find((c) => c.name === "cat");
		assert.ok(r0.dataset.images.filter((i) => i.label === cat?.id).every((i) => i.path.startsWith("train/cat/")));
		const [first] = files.keys();
		files.set(first!, utf8("not an image"));
		files.set("train/loose.png", encodePng(drawImage(8, 8, 9)));
		const r = await read(files);
		assert.deepEqual([only(r, "image_unreadable").file, only(r, "image_unlabeled").file], [first, "train/loose.png"]);
	});
});

describe("format detection", () => {
	it("tells the four formats apart and says when it is none of them", async () => {
		assert.equal(detectFormat([...cocoFiles(spec).keys()]), "coco");
		assert.equal(detectFormat([...yoloFiles(spec).keys()]), "yolo");
		assert.equal(detectFormat([...vocFiles(spec).keys()]), "voc");
		assert.equal(detectFormat([...imagenetFiles(spec).keys()]), "imagenet");
		const r = await read(new Map([["readme.txt", utf8("hello")]]));
		assert.equal(only(r, "format_unknown").severity, "error");
	});
});
