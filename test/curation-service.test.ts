import type { JetStreamManager } from "@nats-io/jetstream";
import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CurationJobProgressed, CurationJobTransitioned, CurationVersionCreated } from "../events/curation";
import type { EventDefinition } from "../events/definition";
import { HEADERS } from "../events/headers";
import { readAfter } from "../events/stream-reader";
import { STREAMS } from "../events/streams";
import type { CurationStatus } from "../services/curation/curation-job";
import { curationService } from "../services/curation/curation.service";
import type { CurationRecord, JobPage } from "../services/curation/job-store";
import type { CuratedManifest } from "../services/curation/manifest";
import { startBroker, testConfig } from "./support/broker";
import { cocoFiles, drawImage, encodePng, sampleSpec, utf8, yoloFiles } from "./support/datasets";
import { type TestNats } from "./support/nats";
import { rejectsWith } from "./support/errors";
import { openServiceSuite, type ServiceSuite } from "./support/suite";
import { waitFor } from "./support/wait";

const WS = "ws-cur";


let suite: ServiceSuite;
let nats: TestNats;
let broker: ServiceBroker;
let jsm: JetStreamManager;
let dataDir: string;
let env: Record<string, string>;

const startBrokerNamed = (node: string) => startBroker(nats.url, node, [curationService(testConfig(env))], env);
const call = <T>(action: string, params: object) => broker.call<T, object>(`curation.${action}`, params);
const start = (params: object) => call<CurationRecord>("start", { workspace: WS, ...params });
const get = (id: string) => call<CurationRecord>("get", { id });

function writeDataset(name: string, files: Map<string, Buffer>): void {
	for (const [path, bytes] of files) {
		const target = join(dataDir, "datasets", WS, name, ...path.split("/"));
		mkdirSync(dirname(target), { recursive: true });
		writeFileSync(target, bytes);
	}
}

async function until(id: string, status: CurationStatus, timeoutMs = 15_000): Promise<CurationRecord> {
	let job: CurationRecord | undefined;
	await waitFor(`curation ${id} to be ${status} (is ${job?.status}: ${job?.error})`, async () => (job = await get(id)).status === status, timeoutMs);
	return job!;
}

/** Events of one job as stored in the EVENTS stream, with their de-duplication ids. */
async function eventsOf<T extends { job_id: string }>(def: EventDefinition<T>, jobId: string): Promise<Array<T & { msgId: string | undefined }>> {
	const { messages } = await readAfter(jsm, STREAMS.events.name, def.subject, 0, 10_000);
	return messages.map((m) => ({ ...m.json<T>(), msgId: m.header?.get(HEADERS.msgId) })).filter((e) => e.job_id === jobId);
}

/** 16 YOLO images plus a byte copy of img_005 (img_016): the copy is a duplicate, removed without review. */
function yoloWithCopy(): Map<string, Buffer> {
	const files = yoloFiles(sampleSpec(16));
	files.set("images/img_016.png", files.get("images/img_005.png")!);
	files.set("labels/img_016.txt", files.get("labels/img_005.txt")!);
	return files;
}

/** Reviews a job to the end: rejects its first sample, keeps the others. */
async function review(job: CurationRecord): Promise<CurationRecord> {
	const decisions = job.samples.map((s, i) => ({ image_id: s.image_id, keep: i !== 0 }));
	return call<CurationRecord>("feedback", { id: job.id, decisions });
}

describe("curation service: dataset folder → embedding → review → curated version", () => {
	before(async () => {
		suite = await openServiceSuite("curation");
		({ nats, dataDir, jsm } = suite);
		env = { DATA_DIR: dataDir };
		broker = await startBrokerNamed("curation-1");
		writeDataset("yolo/pets", yoloWithCopy());
	});

	after(async () => {
		await broker?.stop();
		await suite?.close();
	});

	it("embeds with progress events, asks about samples, and writes a version whose files and sha256 are on disk", async () => {
		// As an edge forwards it once authorized: the caller is the job's owner.
		const started = await broker.call<CurationRecord, object>("curation.start", { workspace: WS, dataset: "yolo/pets", sample_size: 4, source_version_id: "pets-v1" }, { meta: { principal: "ana" } });
		assert.deepEqual([started.owner, started.source_version_id], ["ana", "pets-v1"]);
		assert.match(started.id, /^cur-[0-9a-f]{20}$/);
		const awaiting = await until(started.id, "AWAITING_FEEDBACK");
		assert.ok(awaiting.samples.length >= 1 && awaiting.samples.length <= 4, `${awaiting.samples.length} samples`);
		for (const s of awaiting.samples) {
			assert.match(s.file, /^img_\d{3}\.png$/);
			assert.ok(s.reasons.length > 0, `${s.file} says why it is shown`);
			// The reviewer's copy: in the blob store, byte for byte, behind a signed gateway URL.
			assert.match((s as { url?: string }).url ?? "", /\/v1\/blobs\/[\w-]+\.[\w-]+$/, `${s.file} has a signed URL`);
			assert.deepEqual(readFileSync(join(dataDir, "blobs", ...s.blob_key!.split("/"))), readFileSync(join(dataDir, "datasets", WS, "yolo", "pets", "images", s.file)));
		}
		assert.deepEqual(awaiting.duplicates.map((d) => [d.file, d.kind]), [["img_016.png", "exact"]]);
		assert.ok(!awaiting.samples.some((s) => s.file === "img_016.png"), "a duplicate is not asked about");

		const progress = await eventsOf(CurationJobProgressed, started.id);
		assert.ok(progress.length >= 2, `${progress.length} progress events`);
		assert.deepEqual(progress.map((p) => p.processed), [...progress.map((p) => p.processed)].sort((a, b) => a - b));
		assert.deepEqual(progress.at(-1), { job_id: started.id, workspace: WS, processed: 17, total: 17, msgId: `${started.id}:progress:17` });

		const done = await review(awaiting);
		assert.equal(done.status, "COMPLETED", done.error);
		const rejected = awaiting.samples[0]!.file;
		const manifestPath = join(dataDir, "blobs", ...done.version!.manifest_key.split("/"));
		const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as CuratedManifest;
		assert.equal(manifest.version_id, done.version!.version_id);
		assert.deepEqual(done.curated?.counts, manifest.counts);
		assert.equal(manifest.counts.images, 15, "17 images less the duplicate and the rejected one");
		assert.deepEqual(manifest.removed.map((r) => r.file).sort(), [rejected, "img_016.png"].sort());
		assert.deepEqual(Object.keys(manifest.class_distribution).sort(), ["bird", "cat", "dog"]);
		for (const f of manifest.files) {
			const bytes = readFileSync(join(dirname(manifestPath), ...f.path.split("/")));
			assert.equal(createHash("sha256").update(bytes).digest("hex"), f.sha256, f.path);
		}
		assert.ok(!manifest.files.some((f) => f.path.includes(rejected.replace(/\.png$/, ""))), "the rejected image is left out");
		const written = readdirSync(dirname(manifestPath), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
		assert.equal(written.length, manifest.files.length + 1, "every file and the manifest, no temporary file left");

		const transitions = await eventsOf(CurationJobTransitioned, started.id);
		assert.deepEqual(transitions.map((t) => [t.from, t.to, t.msgId]), [
			["PENDING", "EMBEDDING", `${started.id}:EMBEDDING`],
			["EMBEDDING", "AWAITING_FEEDBACK", `${started.id}:AWAITING_FEEDBACK`],
			["AWAITING_FEEDBACK", "COMPLETED", `${started.id}:COMPLETED`],
		]);
		const [created] = await eventsOf(CurationVersionCreated, started.id);
		assert.deepEqual([created?.version_id, created?.manifest_key, created?.msgId], [manifest.version_id, done.version!.manifest_key, `${started.id}:version`]);
		// What the catalog needs to record the version exactly: its source, classes and owner.
		assert.deepEqual([created?.source_version_id, created?.class_distribution, created?.owner], ["pets-v1", manifest.class_distribution, "ana"]);

		const again = await until((await start({ dataset: "yolo/pets", sample_size: 4 })).id, "AWAITING_FEEDBACK");
		assert.notEqual(again.id, started.id);
		const picked = (j: CurationRecord) => j.samples.map((s) => [s.image_id, s.file, s.reasons]);
		assert.deepEqual(picked(again), picked(awaiting), "embedding and sampling are deterministic");
		assert.equal((await review(again)).version!.version_id, done.version!.version_id, "the same curation gives the same version id");

		const page = await call<JobPage>("list", { workspace: WS, status: "COMPLETED", limit: 1 });
		assert.deepEqual([page.items[0]?.id, page.total, typeof page.next], [again.id, 2, "string"]);
		const second = await call<JobPage>("list", { workspace: WS, status: "COMPLETED", limit: 1, cursor: page.next });
		assert.deepEqual([second.items.map((j) => j.id), second.next], [[started.id], undefined]);
	});

	it("fails a dataset with errors, naming the file and the id of each problem", async () => {
		const files = cocoFiles(sampleSpec(3));
		const doc = JSON.parse(files.get("annotations/instances_train.json")!.toString());
		doc.annotations.push({ id: 777, image_id: 99, category_id: 1, bbox: [1, 1, 4, 4], area: 16, iscrowd: 0 });
		files.set("annotations/instances_train.json", utf8(JSON.stringify(doc, null, 2)));
		writeDataset("dangling", files);
		const failed = await until((await start({ dataset: "dangling" })).id, "FAILED");
		assert.match(failed.error!, /^the dataset has 1 error: error image_missing annotations\/instances_train\.json#777 — annotation 777 refers to image 99/);
		assert.deepEqual([failed.problems[0]?.code, failed.problems[0]?.file, failed.problems[0]?.id], ["image_missing", "annotations/instances_train.json", 777]);
		const transitions = await eventsOf(CurationJobTransitioned, failed.id);
		assert.deepEqual(transitions.map((t) => t.to), ["EMBEDDING", "FAILED"]);
		assert.match(transitions[1]!.reason!, /#777/);
		await assert.rejects(review(failed), rejectsWith(409, "ILLEGAL_STATE"));
	});

	it("refuses a dataset name that leaves the workspace's datasets (422) and a missing one (404)", async () => {
		const outside = mkdtempSync(join(tmpdir(), "savassan-curation-outside-"));
		try {
			writeFileSync(join(outside, "data.yaml"), "names: [a]\n");
			symlinkSync(outside, join(dataDir, "datasets", WS, "linked"));
			for (const dataset of ["../other-ws/yolo/pets", "yolo/../../x", "/etc", "linked"]) {
				await assert.rejects(start({ dataset }), rejectsWith(422, "DATASET_PATH_INVALID"), dataset);
			}
			await assert.rejects(start({ dataset: "nope" }), rejectsWith(404, "DATASET_NOT_FOUND"));
		} finally {
			rmSync(outside, { recursive: true, force: true });
		}
	});

	it("answers a repeated request_id with the same job, and refuses it for another dataset", async () => {
		const first = await start({ dataset: "yolo/pets", request_id: "req-1" });
		const second = await start({ dataset: "yolo/pets", request_id: "req-1" });
		assert.equal(second.id, first.id);
		await assert.rejects(start({ dataset: "dangling", request_id: "req-1" }), rejectsWith(409, "REQUEST_ID_REUSED"));
		await until(first.id, "AWAITING_FEEDBACK");
		assert.equal((await eventsOf(CurationJobTransitioned, first.id)).filter((t) => t.to === "EMBEDDING").length, 1);
	});

	it("answers 404 for an unknown job, 409 for feedback out of turn and 422 for feedback on an image not shown", async () => {
		await assert.rejects(get("cur-unknown"), rejectsWith(404, "NOT_FOUND"));
		await assert.rejects(call("feedback", { id: "cur-unknown", decisions: [] }), rejectsWith(404, "NOT_FOUND"));
		const job = await until((await start({ dataset: "yolo/pets", request_id: "req-2" })).id, "AWAITING_FEEDBACK");
		await assert.rejects(call("feedback", { id: job.id, decisions: [{ image_id: 4242, keep: false }] }), rejectsWith(422, "FEEDBACK_INVALID"));
		assert.equal((await review(job)).status, "COMPLETED");
		await assert.rejects(review(job), rejectsWith(409, "ILLEGAL_STATE"));
	});

	it("resumes a job left EMBEDDING by a stopped instance and completes it once", async () => {
		const spec = sampleSpec(120);
		for (const img of spec.images) Object.assign(img, { width: 192, height: 144 });
		writeDataset("big", yoloFiles(spec, (img) => encodePng(drawImage(img.width, img.height, img.seed, []))));
		const job = await start({ dataset: "big", sample_size: 3 });
		await waitFor("embedding to begin", async () => (await get(job.id)).progress.processed > 0);
		await broker.stop();
		broker = await startBrokerNamed("curation-2");
		const left = await get(job.id);
		assert.equal(left.status, "EMBEDDING", "the stop interrupted the embedding");
		assert.ok(left.progress.processed < 120, `stopped at ${left.progress.processed}/120`);
		const done = await review(await until(job.id, "AWAITING_FEEDBACK"));
		assert.equal(done.status, "COMPLETED", done.error);
		const transitions = await eventsOf(CurationJobTransitioned, job.id);
		assert.deepEqual(transitions.map((t) => t.to), ["EMBEDDING", "AWAITING_FEEDBACK", "COMPLETED"]);
		const progress = await eventsOf(CurationJobProgressed, job.id);
		assert.equal(progress.at(-1)?.processed, 120);
	});
});
