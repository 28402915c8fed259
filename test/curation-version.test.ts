import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { analyze, DEFAULT_ANALYSIS } from "../services/curation/analysis";
import * as job from "../services/curation/curation-job";
import { embedDataset, type Progress } from "../services/curation/embed-dataset";
import { memoryFiles } from "../services/curation/files";
import { buildCuratedVersion, MANIFEST_NAME, removals, versionIdOf, writeCuratedVersion } from "../services/curation/manifest";
import { readDataset } from "../services/curation/read-dataset";
import { createHash } from "node:crypto";
import { brighten, drawImage, encodePng, sampleSpec, yoloFiles } from "./support/datasets";

const T0 = new Date("2026-01-01T00:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);

/** A YOLO dataset of 10 images where img_008 is a brightened copy of img_002 and img_009 a byte copy of img_005. */
function datasetWithCopies() {
	const spec = sampleSpec(10);
	const files = yoloFiles(spec);
	const copy = (to: number, from: number) => spec.images[to]!.boxes.splice(0, Infinity, ...spec.images[from]!.boxes);
	copy(8, 2), copy(9, 5);
	const raster = (i: number) => drawImage(spec.images[i]!.width, spec.images[i]!.height, spec.images[i]!.seed, spec.images[i]!.boxes);
	files.set("images/img_008.png", encodePng(brighten(raster(2), 25)));
	files.set("images/img_009.png", files.get("images/img_005.png")!);
	for (const i of [8, 9]) files.set(`labels/img_00${i}.txt`, files.get(`labels/img_00${i === 8 ? 2 : 5}.txt`)!);
	return { spec, files };
}

async function curate(files: Map<string, Buffer>, rejected: number[] = []) {
	const source = memoryFiles(files);
	const read = await readDataset(source);
	assert.deepEqual(read.problems, []);
	const embedded = await embedDataset(read.dataset, source);
	const analysis = analyze(read.dataset, embedded.embeddings, { ...DEFAULT_ANALYSIS, samples: 4 });
	return { read, analysis, version: await buildCuratedVersion(read.dataset, source, removals(read.dataset, analysis.duplicates, rejected)) };
}

describe("curated dataset version", () => {
	it("drops the duplicates, lists every kept file with its sha256 and counts the classes", async () => {
		const { files } = datasetWithCopies();
		const { analysis, version, read } = await curate(files);
		assert.deepEqual(analysis.duplicates.map((d) => [d.image_id, d.of, d.kind]), [[9, 3, "near"], [10, 6, "exact"]]);
		const m = version.manifest;
		assert.deepEqual(m.removed, [
			{ file: "img_008.png", reason: `near duplicate of img_002.png (pHash distance ${analysis.duplicates[0]!.distance})` },
			{ file: "img_009.png", reason: "exact duplicate of img_005.png" },
		]);
		assert.equal(m.counts.images, 8);
		assert.ok(!m.files.some((f) => f.path.includes("img_008") || f.path.includes("img_009")));
		for (const f of m.files) {
			const bytes = version.files.get(f.path)!;
			assert.equal(f.sha256, createHash("sha256").update(bytes).digest("hex"), f.path);
			assert.equal(f.bytes, bytes.length);
			if (f.path.startsWith("images/")) assert.ok(bytes.equals(files.get(f.path)!));
		}
		const kept = read.dataset.annotations.filter((a) => a.image_id < 9);
		assert.equal(m.counts.annotations, kept.length);
		assert.deepEqual(m.class_distribution, Object.fromEntries(read.dataset.categories.map((c) => [c.name, kept.filter((a) => a.category_id === c.id).length])));
		assert.deepEqual(m.files.map((f) => f.path), [...m.files.map((f) => f.path)].sort());
		const puts: string[] = [];
		const key = await writeCuratedVersion(version, async (k) => void puts.push(k));
		assert.equal(key, `curated/${m.version_id}/${MANIFEST_NAME}`);
		assert.deepEqual(puts, [...m.files.map((f) => `curated/${m.version_id}/${f.path}`), key], "every file, then the manifest last");
	});

	it("gives the same version id on every run and whatever the listing order, and a new one when the content changes", async () => {
		const { files } = datasetWithCopies();
		const a = (await curate(files)).version.manifest;
		const shuffled = new Map([...files].reverse());
		const b = (await curate(shuffled)).version.manifest;
		assert.equal(a.version_id, b.version_id);
		assert.equal(versionIdOf([...a.files].reverse()), a.version_id);
		assert.match(a.version_id, /^[0-9a-f]{64}$/);
		const rejected = (await curate(files, [1])).version.manifest;
		assert.notEqual(rejected.version_id, a.version_id);
		assert.equal(rejected.removed.find((r) => r.file === "img_000.png")?.reason, "rejected in review");
	});
});

describe("curation job", () => {
	const started = () => job.startCuration("cur-1", { project_id: "p", dataset_uri: "file:///d" }, at(0));

	it("goes EMBEDDING → AWAITING_FEEDBACK → COMPLETED with the samples, the feedback and the version", async () => {
		const { files } = datasetWithCopies();
		const s0 = started();
		assert.deepEqual(s0.transitions, [{ job_id: "cur-1", from: "PENDING", to: "EMBEDDING", at: at(0).toISOString() }]);
		let current = s0.job;
		const published: Progress[] = [];
		const source = memoryFiles(files);
		const read = await readDataset(source);
		const embedded = await embedDataset(read.dataset, source, {
			every: 4,
			onProgress: (p) => {
				const r = job.reportProgress(current, p, at(1));
				current = r.job;
				published.push(r.progress);
			},
		});
		assert.deepEqual(published, [{ processed: 4, total: 10 }, { processed: 8, total: 10 }, { processed: 10, total: 10 }]);
		const analysis = analyze(read.dataset, embedded.embeddings, { ...DEFAULT_ANALYSIS, samples: 3 });
		const files2 = new Map(read.dataset.images.map((i) => [i.id, i.file]));
		const s1 = job.awaitFeedback(current, analysis.samples.map((id) => ({ image_id: id, file: files2.get(id)!, reasons: [] })), at(2));
		assert.equal(s1.job.status, "AWAITING_FEEDBACK");
		assert.equal(s1.job.samples.length, 3);
		const withFeedback = job.submitFeedback(s1.job, [{ image_id: analysis.samples[0]!, accepted: false }, { image_id: analysis.samples[1]!, accepted: true }], at(3));
		assert.deepEqual(job.rejectedIds(withFeedback), [analysis.samples[0]]);
		const s2 = job.complete(withFeedback, { version_id: "v".repeat(64), manifest_key: `curated/${"v".repeat(64)}/${MANIFEST_NAME}` }, at(4));
		assert.deepEqual(s2.transitions.map((t) => [t.from, t.to]), [["AWAITING_FEEDBACK", "COMPLETED"]]);
		assert.equal(s2.job.version?.version_id, "v".repeat(64));
	});

	it("refuses illegal transitions and bad feedback with a clear sentence", () => {
		const s = started();
		assert.throws(() => job.complete(s.job, { version_id: "x", manifest_key: "k" }, at(1)), /curation cur-1 cannot go from EMBEDDING to COMPLETED \(from EMBEDDING it may go to AWAITING_FEEDBACK, FAILED\)/);
		assert.throws(() => job.submitFeedback(s.job, [], at(1)), /feedback is accepted only while AWAITING_FEEDBACK/);
		const waiting = job.awaitFeedback(s.job, [{ image_id: 1, file: "a.png", reasons: [] }], at(1)).job;
		assert.throws(() => job.awaitFeedback(waiting, [], at(2)), /cannot go from AWAITING_FEEDBACK to AWAITING_FEEDBACK/);
		assert.throws(() => job.reportProgress(waiting, { processed: 1, total: 1 }, at(2)), /only reported while EMBEDDING/);
		assert.throws(() => job.complete(waiting, { version_id: "x", manifest_key: "k" }, at(2)), /has no feedback yet/);
		assert.throws(() => job.submitFeedback(waiting, [{ image_id: 2, accepted: true }], at(2)), /image 2 was not among the samples/);
		assert.throws(() => job.submitFeedback(waiting, [{ image_id: 1, accepted: true }, { image_id: 1, accepted: false }], at(2)), /more than one decision/);
		const once = job.submitFeedback(waiting, [{ image_id: 1, accepted: true }], at(2));
		assert.throws(() => job.submitFeedback(once, [], at(3)), /already submitted/);
		const failed = job.fail(once, "the blob store refused the write", at(3));
		assert.deepEqual(failed.transitions[0], { job_id: "cur-1", from: "AWAITING_FEEDBACK", to: "FAILED", at: at(3).toISOString(), reason: "the blob store refused the write" });
		assert.throws(() => job.fail(failed.job, "again", at(4)), /FAILED is final/);
	});

	it("keeps progress monotonic and within the total", () => {
		let j = started().job;
		j = job.reportProgress(j, { processed: 5, total: 10 }, at(1)).job;
		assert.deepEqual(job.reportProgress(j, { processed: 3, total: 10 }, at(2)).progress, { processed: 5, total: 10 });
		assert.throws(() => job.reportProgress(j, { processed: 11, total: 10 }, at(2)), /not a count between 0 and the total/);
	});
});
