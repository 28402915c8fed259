/**
 * Curation benchmark: images per second through validation + hashing (read and check a YOLO dataset, then decode,
 * sha256, pHash and thumbnail every image) on generated 64×64 PNGs, against a same-run baseline that only reads
 * and decodes the same files with pngjs (synchronously, and through the same async read path the pipeline uses).
 * Also the validation and hashing stages on their own.
 * Usage: npm run build && node dist/bench/curation.bench.js [--images 10000] [--rounds 3]
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { PNG } from "pngjs";
import { embedDataset } from "../services/curation/embed-dataset";
import { folderFiles } from "../services/curation/files";
import { readDataset } from "../services/curation/read-dataset";
import { median } from "./support";
import { sampleSpec, yoloFiles } from "../test/support/datasets";

const { values: args } = parseArgs({ options: { images: { type: "string", default: "10000" }, rounds: { type: "string", default: "3" } } });
const IMAGES = Number(args.images);
const ROUNDS = Number(args.rounds);
const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

/** A YOLO dataset of square 64×64 images (three classes, one to three boxes each) written to `dir`. */
function writeDataset(dir: string): string[] {
	const spec = sampleSpec(IMAGES);
	for (const img of spec.images) {
		img.width = img.height = 64;
		img.file = `train/${img.file}`;
	}
	const files = yoloFiles(spec);
	for (const [path, bytes] of files) {
		mkdirSync(join(dir, path, ".."), { recursive: true });
		writeFileSync(join(dir, path), bytes);
	}
	return spec.images.map((i) => join(dir, "images", i.file));
}

async function main(): Promise<void> {
	console.log(`Node ${process.version}, ${cpus().length} cores; ${fmt(IMAGES)} images of 64×64 (PNG, YOLO), ${ROUNDS} rounds\n`);
	const dir = mkdtempSync(join(tmpdir(), "savassan-bench-curation-"));
	try {
		const t = performance.now();
		const paths = writeDataset(dir);
		console.log(`generated in ${fmt((performance.now() - t) / 1000, 1)} s\n`);
		const rate = { baseline: [] as number[], asyncBaseline: [] as number[], pipeline: [] as number[], validation: [] as number[], hashing: [] as number[] };
		const images = (await folderFiles(dir).list()).filter((p) => p.startsWith("images/"));
		let problems = 0;
		for (let round = 0; round < ROUNDS; round++) {
			let t0 = performance.now();
			for (const p of paths) PNG.sync.read(readFileSync(p));
			rate.baseline.push(IMAGES / ((performance.now() - t0) / 1000));
			t0 = performance.now();
			for (const p of images) PNG.sync.read(await folderFiles(dir).read(p));
			rate.asyncBaseline.push(IMAGES / ((performance.now() - t0) / 1000));

			t0 = performance.now();
			const files = folderFiles(dir);
			const read = await readDataset(files);
			const t1 = performance.now();
			const embedded = await embedDataset(read.dataset, files);
			const t2 = performance.now();
			problems = read.problems.length + embedded.problems.length;
			if (embedded.embeddings.size !== IMAGES) throw new Error(`embedded ${embedded.embeddings.size} of ${IMAGES} images`);
			rate.pipeline.push(IMAGES / ((t2 - t0) / 1000));
			rate.validation.push(IMAGES / ((t1 - t0) / 1000));
			rate.hashing.push(IMAGES / ((t2 - t1) / 1000));
		}
		const base = median(rate.baseline);
		console.log("| measure | result | same-run baseline | ratio |");
		console.log("|---|---|---|---|");
		console.log(`| validation + hashing, ${fmt(IMAGES)} images (problems found: ${problems}) | **${fmt(median(rate.pipeline))} images/s** | read + pngjs decode only: ${fmt(base)} images/s | ${(median(rate.pipeline) / base).toFixed(2)} × |`);
		const asyncBase = median(rate.asyncBaseline);
		console.log(`| the same, against the same read path | | read through the dataset port (async, no symlinks) + pngjs decode: ${fmt(asyncBase)} images/s | ${(median(rate.pipeline) / asyncBase).toFixed(2)} × |`);
		console.log(`| validation alone (listing, data.yaml, labels, image headers, box rules) | ${fmt(median(rate.validation))} images/s | | ${(median(rate.validation) / base).toFixed(2)} × |`);
		console.log(`| hashing alone (read, decode, sha256, 32×32 pHash, 8×8×3 thumbnail) | ${fmt(median(rate.hashing))} images/s | port read + decode: ${fmt(asyncBase)} images/s | ${(median(rate.hashing) / asyncBase).toFixed(2)} × |`);
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
