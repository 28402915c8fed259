import { Errors, type Context, type Service, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import { realpath, stat } from "node:fs/promises";
import { extname, join, sep } from "node:path";
import { CurationJobProgressed, CurationJobTransitioned, CurationVersionCreated } from "../../events/curation";
import type { EventDefinition } from "../../events/definition";
import type { Published, PublishOptions } from "../../events/publish";
import type { BlobStore } from "../../lib/blob";
import type { PlatformConfig } from "../../lib/config";
import { busOf } from "../../lib/moleculer/bus.middleware";
import { DurableEventsMixin } from "../../lib/moleculer/durable-events.mixin";
import { openPlatformBlobs } from "../../lib/platform-blobs";
import { analyze, DEFAULT_ANALYSIS } from "./analysis";
import { awaitFeedback, complete, CurationInputError, fail, rejectedIds, reportProgress, startCuration, submitFeedback, type FeedbackSample, type JobTransition, type Step } from "./curation-job";
import { embedDataset, type Progress } from "./embed-dataset";
import { folderFiles, type DatasetFiles } from "./files";
import { JobStore, jobIdFor, RequestReuseError, type CurationRecord, type JobQuery, type OutboxEntry } from "./job-store";
import { buildCuratedVersion, removals, writeCuratedVersion } from "./manifest";
import { formatProblem, type Problem } from "./problems";
import { readDataset } from "./read-dataset";
import { resolveInside } from "./safe-path";

/**
 * The curation context: a dataset folder → a job that validates and embeds it in the background (progress as
 * events), asks a reviewer about the most informative samples, and on their feedback writes a curated version.
 * Jobs live in KV (compare-and-set); a start resumes what a stopped instance left: embedding is deterministic, so
 * an interrupted job simply runs again from the beginning.
 */

const SERVICE = "curation";
/** Progress is published about this many times per job, whatever its size. */
const PROGRESS_STEPS = 20;
const PROBLEMS_KEPT = 50;
const PROBLEMS_IN_REASON = 3;
const REASON_MAX = 4000;

const OUTBOX_EVENTS: Record<OutboxEntry["event"], EventDefinition<never>> = {
	transitioned: CurationJobTransitioned as EventDefinition<never>,
	version_created: CurationVersionCreated as EventDefinition<never>,
};

interface StartParams {
	workspace: string;
	dataset: string;
	request_id?: string;
	sample_size: number;
	/** The catalog dataset version the folder holds, when the caller knows it: the curated version derives from it. */
	source_version_id?: string;
}

interface FeedbackParams {
	id: string;
	decisions: Array<{ image_id: number; keep: boolean }>;
}

interface CurationThis extends Service {
	publishEvent<T>(def: EventDefinition<T>, payload: T, opts?: PublishOptions): Promise<Published>;
	store: JobStore;
	blobs: BlobStore;
	/** The last task queued for each job this instance is advancing: one at a time per job. */
	running: Map<string, Promise<CurationRecord | undefined>>;
	stopping: AbortController;
	found(id: string): Promise<CurationRecord>;
	datasetOf(job: Pick<CurationRecord, "workspace" | "dataset">): Promise<DatasetFiles>;
	launch(id: string): Promise<CurationRecord | undefined>;
	advance(id: string): Promise<CurationRecord | undefined>;
	embed(job: CurationRecord): Promise<CurationRecord>;
	progress(job: CurationRecord, p: Progress): Promise<void>;
	finish(job: CurationRecord): Promise<CurationRecord>;
	change(id: string, decide: (job: CurationRecord) => CurationRecord | undefined): Promise<CurationRecord>;
	flush(job: CurationRecord): Promise<CurationRecord>;
}

class JobNotFoundError extends Error {
	override name = "JobNotFoundError";
	constructor(readonly jobId: string) {
		super(`no curation job with id ${jobId}`);
	}
}

/** A command the job's status does not allow now. */
class JobStateError extends Error {
	override name = "JobStateError";
}

class DatasetPathError extends Error {
	override name = "DatasetPathError";
	constructor(message: string, readonly status: 404 | 422) {
		super(message);
	}
}

/** Thrown into a running job when the service stops: the job stays where it is and the next start resumes it. */
class ServiceStopping extends Error {
	override name = "ServiceStopping";
}

function clientError(err: unknown): never {
	if (err instanceof JobNotFoundError) throw new Errors.MoleculerClientError(err.message, 404, "NOT_FOUND", { id: err.jobId });
	if (err instanceof DatasetPathError) {
		throw new Errors.MoleculerClientError(err.message, err.status, err.status === 404 ? "DATASET_NOT_FOUND" : "DATASET_PATH_INVALID", { field: "dataset" });
	}
	if (err instanceof RequestReuseError) throw new Errors.MoleculerClientError(err.message, 409, "REQUEST_ID_REUSED", { field: "request_id" });
	if (err instanceof JobStateError) throw new Errors.MoleculerClientError(err.message, 409, "ILLEGAL_STATE");
	if (err instanceof CurationInputError) throw new Errors.MoleculerClientError(err.message, 422, "FEEDBACK_INVALID", { field: "decisions" });
	throw err;
}

/**
 * The dataset's folder: `<datasets>/<workspace>/<dataset>`, refused when the name climbs out of the workspace's
 * folder, by its spelling or through a symbolic link.
 */
async function datasetFolder(datasetsRoot: string, workspace: string, dataset: string): Promise<string> {
	const inside = resolveInside(workspace, dataset);
	if (!inside) throw new DatasetPathError(`dataset ${JSON.stringify(dataset)} is not a relative path inside the workspace's datasets`, 422);
	const missing = () => new DatasetPathError(`workspace ${workspace} has no dataset ${inside.slice(workspace.length + 1)}`, 404);
	const [root, folder] = await Promise.all([realpath(join(datasetsRoot, workspace)), realpath(join(datasetsRoot, ...inside.split("/")))]).catch(() => {
		throw missing();
	});
	if (!folder.startsWith(root + sep)) throw new DatasetPathError(`dataset ${JSON.stringify(dataset)} leads outside the workspace's datasets`, 422);
	if (!(await stat(folder)).isDirectory()) throw missing();
	return folder;
}

/** A repeated request id: the stored job when it names the same dataset, else 409. */
function sameRequest(stored: CurationRecord, p: StartParams): CurationRecord {
	if (stored.dataset !== p.dataset) throw new RequestReuseError(`request_id ${p.request_id} was already used for curation ${stored.id} of dataset ${stored.dataset}`);
	return stored;
}

function transitionEntry(job: CurationRecord, t: JobTransition): OutboxEntry {
	return {
		event: "transitioned",
		msg_id: `${job.id}:${t.to}`,
		payload: { job_id: job.id, workspace: job.workspace, dataset: job.dataset, from: t.from, to: t.to, at: t.at, ...(t.reason ? { reason: t.reason.slice(0, REASON_MAX) } : {}) },
	};
}

/** The record after a domain step, owing the step's transition events (after `owed`). */
function stepped(job: CurationRecord, step: Step, patch: Partial<CurationRecord> = {}, owed: OutboxEntry[] = []): CurationRecord {
	const next: CurationRecord = { ...job, ...step.job, ...patch };
	return { ...next, outbox: [...job.outbox, ...owed, ...step.transitions.map((t) => transitionEntry(next, t))] };
}

/** Errors first, then warnings: what the job keeps to show. */
const shown = (problems: Problem[]) => [...problems.filter((p) => p.severity === "error"), ...problems.filter((p) => p.severity !== "error")].slice(0, PROBLEMS_KEPT);

function invalidDataset(problems: Problem[]): string {
	const errors = problems.filter((p) => p.severity === "error");
	return `the dataset has ${errors.length} error${errors.length === 1 ? "" : "s"}: ${errors.slice(0, PROBLEMS_IN_REASON).map(formatProblem).join("; ")}${errors.length > PROBLEMS_IN_REASON ? "; …" : ""}`;
}

const SAMPLE_URL_TTL_S = 3600;

const isFinal = (job: CurationRecord) => job.status === "COMPLETED" || job.status === "FAILED";

/** What callers see of a job: the outbox is the service's business. */
function view(job: CurationRecord): Omit<CurationRecord, "outbox"> {
	const { outbox: _outbox, ...rest } = job;
	return rest;
}

export function curationService(config: PlatformConfig): ServiceSchema<ServiceSettingSchema, CurationThis> {
	const datasetsRoot = join(config.dataDir, "datasets");
	return {
		name: SERVICE,
		mixins: [DurableEventsMixin],
		actions: {
			async start(this: CurationThis, c: Context<StartParams, { principal?: string }>) {
				const p = c.params;
				try {
					const id = jobIdFor(p.workspace, p.request_id);
					const stored = await this.store.get(id);
					if (stored) return view(await this.flush(sameRequest(stored, p)));
					await datasetFolder(datasetsRoot, p.workspace, p.dataset);
					const step = startCuration(id, { project_id: p.workspace, dataset_uri: `datasets/${p.workspace}/${p.dataset}` }, new Date());
					const base: CurationRecord = {
						...step.job,
						workspace: p.workspace,
						dataset: p.dataset,
						...(p.request_id ? { request_id: p.request_id } : {}),
						...(p.source_version_id ? { source_version_id: p.source_version_id } : {}),
						// Set when a user started it through an edge; platform-internal jobs have no owner.
						...(c.meta.principal !== undefined ? { owner: c.meta.principal } : {}),
						sample_size: p.sample_size,
						trace_id: c.requestID!,
						problems: [],
						duplicates: [],
						undecodable: [],
						outbox: [],
					};
					const created = await this.store.create({ ...base, outbox: step.transitions.map((t) => transitionEntry(base, t)) });
					if (!created.created) return view(await this.flush(sameRequest(created.job, p)));
					const announced = await this.flush(created.job);
					void this.launch(id);
					return view(announced);
				} catch (err) {
					return clientError(err);
				}
			},
			/** A job awaiting feedback carries a signed URL (1 h) per sample for the review UI. */
			async get(this: CurationThis, c: Context<{ id: string }>) {
				const job = view(await this.found(c.params.id).catch(clientError));
				if (job.status !== "AWAITING_FEEDBACK") return job;
				const samples = await Promise.all(
					job.samples.map(async (s) => (s.blob_key ? { ...s, url: (await this.blobs.presignGet(s.blob_key, { expiresSec: SAMPLE_URL_TTL_S })).url } : s)),
				);
				return { ...job, samples };
			},
			list(this: CurationThis, c: Context<JobQuery>) {
				const page = this.store.list(c.params);
				return { ...page, items: page.items.map(view) };
			},
			/** Records the decisions, then writes the version; answers with the job COMPLETED (or FAILED). */
			async feedback(this: CurationThis, c: Context<FeedbackParams>) {
				const { id, decisions } = c.params;
				try {
					await this.found(id);
					await this.store.update(id, (job) => {
						if (job.status !== "AWAITING_FEEDBACK") throw new JobStateError(`curation ${id} is ${job.status}; feedback is accepted only while AWAITING_FEEDBACK`);
						if (job.feedback) throw new JobStateError(`feedback for curation ${id} was already submitted`);
						return { ...job, ...submitFeedback(job, decisions.map((d) => ({ image_id: d.image_id, accepted: d.keep })), new Date()) };
					});
					return view((await this.launch(id)) ?? (await this.found(id)));
				} catch (err) {
					return clientError(err);
				}
			},
		},
		methods: {
			async found(this: CurationThis, id: string): Promise<CurationRecord> {
				const job = await this.store.get(id);
				if (!job) throw new JobNotFoundError(id);
				return job;
			},
			async datasetOf(this: CurationThis, job: Pick<CurationRecord, "workspace" | "dataset">): Promise<DatasetFiles> {
				return folderFiles(await datasetFolder(datasetsRoot, job.workspace, job.dataset));
			},
			/**
			 * Advances the job after whatever this instance is already doing with it: feedback that arrives while the
			 * embedding task is still publishing its last event must not be answered by that task's stale result.
			 */
			launch(this: CurationThis, id: string): Promise<CurationRecord | undefined> {
				const task = (this.running.get(id) ?? Promise.resolve(undefined)).then(() => this.advance(id));
				this.running.set(id, task);
				void task.then(() => {
					if (this.running.get(id) === task) this.running.delete(id);
				});
				return task;
			},
			/** Does whatever the job still needs (events owed, embedding, the version); never rejects. */
			async advance(this: CurationThis, id: string): Promise<CurationRecord | undefined> {
				try {
					let job = await this.flush(await this.found(id));
					if (job.status === "EMBEDDING") job = await this.embed(job);
					if (job.status === "AWAITING_FEEDBACK" && job.feedback) job = await this.finish(job);
					return job;
				} catch (err) {
					if (err instanceof ServiceStopping) return undefined;
					const reason = err instanceof DatasetPathError ? err.message : `curation stopped on an unexpected error: ${(err as Error).message}`;
					this.logger.error(`curation ${id}: ${reason}`);
					return this.change(id, (job) => (isFinal(job) ? undefined : stepped(job, fail(job, reason, new Date())))).catch((failed: Error) => {
						this.logger.error(`curation ${id}: cannot record the failure: ${failed.message}`);
						return undefined;
					});
				}
			},
			/** Validates and embeds the dataset, then asks for feedback on the samples analysis picked. */
			async embed(this: CurationThis, job: CurationRecord): Promise<CurationRecord> {
				const files = await this.datasetOf(job);
				const read = await readDataset(files);
				if (!read.valid) {
					const reason = invalidDataset(read.problems);
					return this.change(job.id, (j) => (j.status === "EMBEDDING" ? stepped(j, fail(j, reason, new Date()), { problems: shown(read.problems) }) : undefined));
				}
				const { images } = read.dataset;
				const every = Math.max(1, Math.ceil(images.length / PROGRESS_STEPS));
				const embedded = await embedDataset(read.dataset, files, { every, onProgress: (p) => this.progress(job, p) });
				const analysis = analyze(read.dataset, embedded.embeddings, { ...DEFAULT_ANALYSIS, samples: job.sample_size });
				const fileOf = new Map(images.map((i) => [i.id, i.file]));
				const outliers = new Map(analysis.outliers.map((o) => [o.image_id, o.reasons]));
				const samples: FeedbackSample[] = [];
				const pathOf = new Map(images.map((i) => [i.id, i.path]));
				for (const id of analysis.samples) {
					// The dataset's folder is not served: the reviewer sees a copy in the blob store.
					const file = fileOf.get(id)!;
					const blobKey = `curation/${job.id}/samples/${id}${extname(file).toLowerCase()}`;
					await this.blobs.putBytes(blobKey, await files.read(pathOf.get(id)!));
					samples.push({ image_id: id, file, reasons: outliers.get(id) ?? ["k-center"], blob_key: blobKey });
				}
				const patch: Partial<CurationRecord> = {
					problems: shown([...read.problems, ...embedded.problems]),
					duplicates: analysis.duplicates.map((d) => ({ ...d, file: fileOf.get(d.image_id)! })),
					undecodable: images.filter((i) => !embedded.embeddings.has(i.id)).map((i) => i.id),
				};
				return this.change(job.id, (j) => (j.status === "EMBEDDING" ? stepped(j, awaitFeedback(j, samples, new Date()), patch) : undefined));
			},
			async progress(this: CurationThis, job: CurationRecord, p: Progress): Promise<void> {
				this.stopping.signal.throwIfAborted();
				await this.store.update(job.id, (j) => {
					if (j.status !== "EMBEDDING") return undefined;
					const next = reportProgress(j, p, new Date()).job;
					return next === j ? undefined : { ...j, ...next };
				});
				await this.publishEvent(CurationJobProgressed, { job_id: job.id, workspace: job.workspace, ...p }, { msgId: `${job.id}:progress:${p.processed}`, traceId: job.trace_id });
			},
			/** Writes the curated version (duplicates, undecodable and rejected images left out) and completes the job. */
			async finish(this: CurationThis, job: CurationRecord): Promise<CurationRecord> {
				const files = await this.datasetOf(job);
				const read = await readDataset(files);
				if (!read.valid) {
					const reason = `the dataset changed since it was embedded and now fails validation; ${invalidDataset(read.problems)}`;
					return this.change(job.id, (j) => (isFinal(j) ? undefined : stepped(j, fail(j, reason, new Date()), { problems: shown(read.problems) })));
				}
				const version = await buildCuratedVersion(read.dataset, files, removals(read.dataset, job.duplicates, rejectedIds(job), job.undecodable));
				const { manifest } = version;
				const manifestKey = await writeCuratedVersion(version, async (key, bytes) => void (await this.blobs.putBytes(key, bytes)));
				const created: OutboxEntry = {
					event: "version_created",
					msg_id: `${job.id}:version`,
					payload: {
						job_id: job.id,
						workspace: job.workspace,
						dataset: job.dataset,
						version_id: manifest.version_id,
						manifest_key: manifestKey,
						format: manifest.format,
						counts: manifest.counts,
						class_distribution: manifest.class_distribution,
						...(job.source_version_id ? { source_version_id: job.source_version_id } : {}),
						...(job.owner ? { owner: job.owner } : {}),
					},
				};
				const curated = { format: manifest.format, counts: manifest.counts, class_distribution: manifest.class_distribution };
				const ref = { version_id: manifest.version_id, manifest_key: manifestKey };
				return this.change(job.id, (j) => (j.status === "AWAITING_FEEDBACK" ? stepped(j, complete(j, ref, new Date()), { curated }, [created]) : undefined));
			},
			/** Compare-and-set, then publishes what the change owes. */
			async change(this: CurationThis, id: string, decide: (job: CurationRecord) => CurationRecord | undefined): Promise<CurationRecord> {
				return this.flush((await this.store.update(id, decide)).job);
			},
			/** Publishes the job's owed events in order (their ids make a repeat harmless), then clears them. */
			async flush(this: CurationThis, job: CurationRecord): Promise<CurationRecord> {
				if (!job.outbox.length) return job;
				for (const e of job.outbox) await this.publishEvent(OUTBOX_EVENTS[e.event], e.payload as never, { msgId: e.msg_id, traceId: job.trace_id });
				const sent = new Set(job.outbox.map((e) => e.msg_id));
				return (await this.store.update(job.id, (j) => (j.outbox.some((e) => sent.has(e.msg_id)) ? { ...j, outbox: j.outbox.filter((e) => !sent.has(e.msg_id)) } : undefined))).job;
			},
		},
		async started(this: CurationThis) {
			this.running = new Map();
			this.stopping = new AbortController();
			this.blobs = openPlatformBlobs(config.assets);
			this.store = await JobStore.open(busOf(this.broker).js, config.streamReplicas);
			for (const job of this.store.pending()) void this.launch(job.id);
		},
		async stopped(this: CurationThis) {
			this.stopping?.abort(new ServiceStopping("the curation service is stopping"));
			await Promise.allSettled(this.running?.values() ?? []);
			this.store?.close();
		},
	};
}
