/**
 * Small datasets for the curation tests and benchmark, generated on the spot: images drawn with pngjs / jpeg-js
 * (background gradient, filled shapes at the annotated boxes, optional noise) and annotation files written here by
 * hand for each format — independently of the platform's writers, so reader tests are not circular.
 */
import * as jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { mulberry32 } from "../../bench/catalog-data";

export interface Raster {
	width: number;
	height: number;
	rgba: Buffer;
}

export type XYWH = [number, number, number, number];

export interface SampleBox {
	cls: number;
	box: XYWH;
}

export interface SampleImage {
	/** Name relative to the format's image folder. */
	file: string;
	width: number;
	height: number;
	seed: number;
	boxes: SampleBox[];
}

export interface SampleSpec {
	names: string[];
	images: SampleImage[];
}

const PALETTE: Array<[number, number, number]> = [[220, 40, 40], [40, 180, 60], [40, 80, 220], [230, 200, 30], [160, 40, 200]];

/** A picture with a seeded gradient, seeded random blobs, and a filled shape per box (class colour; odd classes round). */
export function drawImage(width: number, height: number, seed: number, boxes: SampleBox[] = [], noise = 0): Raster {
	const rand = mulberry32(seed);
	const rgba = Buffer.alloc(width * height * 4);
	const [r0, g0, b0, r1, g1, b1] = Array.from({ length: 6 }, () => rand() * 255);
	const blobs = Array.from({ length: 4 }, () => ({ x: rand() * width, y: rand() * height, r: (0.1 + rand() * 0.25) * Math.min(width, height), c: [rand() * 255, rand() * 255, rand() * 255] }));
	for (let y = 0; y < height; y++) {
		for (let x = 0; x < width; x++) {
			const t = (x + y) / (width + height);
			let c = [r0! + (r1! - r0!) * t, g0! + (g1! - g0!) * t, b0! + (b1! - b0!) * t];
			for (const b of blobs) if ((x - b.x) ** 2 + (y - b.y) ** 2 < b.r ** 2) c = b.c;
			for (const { cls, box } of boxes) {
				const [bx, by, bw, bh] = box;
				const inside = cls % 2 ? ((x - bx - bw / 2) / (bw / 2)) ** 2 + ((y - by - bh / 2) / (bh / 2)) ** 2 <= 1 : x >= bx && x < bx + bw && y >= by && y < by + bh;
				if (inside) c = PALETTE[cls % PALETTE.length]!;
			}
			const o = (y * width + x) * 4;
			for (let k = 0; k < 3; k++) rgba[o + k] = Math.max(0, Math.min(255, Math.round(c[k]! + (noise ? (rand() - 0.5) * noise : 0))));
			rgba[o + 3] = 255;
		}
	}
	return { width, height, rgba };
}

export const encodePng = (r: Raster): Buffer => {
	const png = new PNG({ width: r.width, height: r.height });
	r.rgba.copy(png.data);
	return PNG.sync.write(png);
};

export const encodeJpeg = (r: Raster, quality = 90): Buffer => jpeg.encode({ width: r.width, height: r.height, data: r.rgba }, quality).data;

/** Adds `delta` to every colour channel (clamped). */
export function brighten(r: Raster, delta: number): Raster {
	const rgba = Buffer.from(r.rgba);
	for (let i = 0; i < rgba.length; i++) if (i % 4 !== 3) rgba[i] = Math.max(0, Math.min(255, rgba[i]! + delta));
	return { ...r, rgba };
}

export const encodeFor = (file: string, r: Raster) => (/\.png$/i.test(file) ? encodePng(r) : encodeJpeg(r));
export const renderImage = (img: SampleImage) => encodeFor(img.file, drawImage(img.width, img.height, img.seed, img.boxes));

/** Three classes, `count` images of 64×48 / 48×64 with one to three boxes each (fractional corners included). */
export function sampleSpec(count = 6, ext = "png"): SampleSpec {
	const rand = mulberry32(count * 7919);
	const images = Array.from({ length: count }, (_, i): SampleImage => {
		const [width, height] = i % 2 ? [48, 64] : [64, 48];
		const boxes = Array.from({ length: 1 + (i % 3) }, (): SampleBox => {
			const w = 6 + Math.floor(rand() * 20) + 0.25, h = 6 + Math.floor(rand() * 20) + 0.5;
			return { cls: Math.floor(rand() * 3), box: [Math.floor(rand() * (width - w)) + 0.5, Math.floor(rand() * (height - h)), w, h] };
		});
		return { file: `img_${String(i).padStart(3, "0")}.${ext}`, width, height, seed: 1000 + i, boxes };
	});
	return { names: ["cat", "dog", "bird"], images };
}

type Files = Map<string, Buffer>;
export const utf8 = (s: string) => Buffer.from(s, "utf8");

export function cocoFiles(spec: SampleSpec): Files {
	let ann = 0;
	const doc = {
		info: { description: "generated" },
		images: spec.images.map((img, i) => ({ id: i + 1, file_name: img.file, width: img.width, height: img.height })),
		categories: spec.names.map((name, i) => ({ id: i + 1, name, supercategory: "animal" })),
		annotations: spec.images.flatMap((img, i) => img.boxes.map((b) => ({ id: ++ann, image_id: i + 1, category_id: b.cls + 1, bbox: b.box, area: b.box[2] * b.box[3], iscrowd: 0 }))),
	};
	const files: Files = new Map([["annotations/instances_train.json", utf8(JSON.stringify(doc, null, 2))]]);
	for (const img of spec.images) files.set(`images/${img.file}`, renderImage(img));
	return files;
}

export const yoloLine = (b: SampleBox, img: { width: number; height: number }) =>
	[b.cls, (b.box[0] + b.box[2] / 2) / img.width, (b.box[1] + b.box[3] / 2) / img.height, b.box[2] / img.width, b.box[3] / img.height].map((v) => +v.toFixed(6)).join(" ");

export function yoloFiles(spec: SampleSpec, render: (img: SampleImage) => Buffer = renderImage): Files {
	const files: Files = new Map([["data.yaml", utf8(`# generated\npath: .\ntrain: images\nval: images\n\nnc: ${spec.names.length}\nnames:\n${spec.names.map((n) => `  - ${n}`).join("\n")}\n`)]]);
	for (const img of spec.images) {
		files.set(`images/${img.file}`, render(img));
		files.set(`labels/${img.file.replace(/\.\w+$/, ".txt")}`, utf8(img.boxes.map((b) => `${yoloLine(b, img)}\n`).join("")));
	}
	return files;
}

export function vocXml(img: SampleImage, names: string[]): string {
	const objects = img.boxes
		.map(({ cls, box: [x, y, w, h] }) => `  <object>\n    <name>${names[cls]}</name>\n    <difficult>0</difficult>\n    <bndbox>\n      <xmin>${x}</xmin>\n      <ymin>${y}</ymin>\n      <xmax>${x + w}</xmax>\n      <ymax>${y + h}</ymax>\n    </bndbox>\n  </object>\n`)
		.join("");
	return `<?xml version="1.0" encoding="utf-8"?>\n<annotation>\n  <folder>VOC</folder>\n  <filename>${img.file}</filename>\n  <size>\n    <width>${img.width}</width>\n    <height>${img.height}</height>\n    <depth>3</depth>\n  </size>\n${objects}</annotation>\n`;
}

export function vocFiles(spec: SampleSpec): Files {
	const files: Files = new Map();
	for (const img of spec.images) {
		files.set(`JPEGImages/${img.file}`, renderImage(img));
		files.set(`Annotations/${img.file.replace(/\.\w+$/, ".xml")}`, utf8(vocXml(img, spec.names)));
	}
	return files;
}

/** Class folders: each image goes to the folder of its first box's class. */
export function imagenetFiles(spec: SampleSpec): Files {
	return new Map(spec.images.map((img) => [`train/${spec.names[img.boxes[0]!.cls]}/${img.file}`, renderImage(img)]));
}
