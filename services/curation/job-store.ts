import type { JetStreamClient } from "@nats-io/jetstream";
import { DocumentBucket, type Page, type PageQuery } from "../../lib/document-bucket";
import { requestScopedId } from "../../lib/ids";
import type { CurationJob, CurationStatus } from "./curation-job";
import type { CuratedManifest } from "./manifest";
import type { Problem } from "./problems";

/**
 * Curation jobs in the JetStream KV bucket `curation_jobs`. A job is created once (never overwritten) and then
 * moves by compare-and-set only, so two instances racing on one job apply their changes one after the other.
 * The events a change owes are written with it (the outbox) and removed once published, so a crash between the
 * write and the publish is repaired at the next start. An in-memory index, kept current by a watch, serves lists
 * and finds the jobs to resume.
 */

export const JOBS_BUCKET = "curation_jobs";

export interface OutboxEntry {
	event: "transitioned" | "version_created";
	msg_id: string;
	payload: Record<string, unknown>;
}

/** The domain's job plus what the service needs around it. */
export interface CurationRecord extends CurationJob {
	workspace: string;
	/** The dataset's folder, relative to the workspace's datasets. */
	dataset: string;
	request_id?: string;
	/** The catalog dataset version the folder held (curation.start's `source_version_id`). */
	source_version_id?: string;
	/** Who started the job through an edge. */
	owner?: string;
	sample_size: number;
	trace_id: string;
	/** Problems found reading the dataset: the first errors when it failed, its warnings otherwise. */
	problems: Problem[];
	/** Removed without review (exact or near copies of another image). */
	duplicates: Array<{ image_id: number; file: string; of: number; kind: "exact" | "near"; distance: number }>;
	/** Images that could not be decoded; left out of the version. */
	undecodable: number[];
	/** The curated version's summary, once COMPLETED (the full manifest is beside its files). */
	curated?: Pick<CuratedManifest, "format" | "counts" | "class_distribution">;
	outbox: OutboxEntry[];
}

export interface JobQuery extends PageQuery {
	workspace: string;
	status?: CurationStatus;
}

export type JobPage = Page<CurationRecord>;

export class RequestReuseError extends Error {
	override name = "RequestReuseError";
}

/** Same workspace and request id → same job id, so a retried start finds the first job. */
export function jobIdFor(workspace: string, requestId: string | undefined): string {
	return requestScopedId("cur", workspace, requestId);
}

export class JobStore {
	private constructor(private readonly jobs: DocumentBucket<CurationRecord>) {}

	static async open(js: JetStreamClient, replicas: number): Promise<JobStore> {
		return new JobStore(await DocumentBucket.open<CurationRecord>(js, JOBS_BUCKET, { history: 5, replicas, description: "Curation jobs (curation)" }));
	}

	/** From the bucket, not the index: a read after a write on another instance sees it. */
	get(id: string): Promise<CurationRecord | undefined> {
		return this.jobs.get(id);
	}

	/** Stores a new job; when the id exists already, returns the stored one instead. */
	async create(job: CurationRecord): Promise<{ job: CurationRecord; created: boolean }> {
		const { doc, created } = await this.jobs.create(job);
		return { job: doc, created };
	}

	/**
	 * Compare-and-set on a stored job. `change` must be pure (it may run again on a conflict) and returns undefined
	 * to write nothing. Returns the job as stored afterwards and whether this call wrote it.
	 */
	async update(id: string, change: (job: CurationRecord) => CurationRecord | undefined): Promise<{ job: CurationRecord; written: boolean }> {
		const { current, written } = await this.jobs.update(id, (stored) => {
			if (!stored) throw new Error(`curation job ${id} does not exist`);
			return change(stored);
		});
		return { job: (written ?? current)!, written: written !== undefined };
	}

	/** Jobs with work left (embedding, or feedback given but no version yet) or events still owed: what a start resumes. */
	pending(): CurationRecord[] {
		return this.jobs.values().filter((j) => j.outbox.length > 0 || j.status === "EMBEDDING" || (j.status === "AWAITING_FEEDBACK" && j.feedback));
	}

	/** Newest first, from the index. */
	list(q: JobQuery): JobPage {
		return this.jobs.page((j) => j.workspace === q.workspace && (!q.status || j.status === q.status), q);
	}

	close(): void {
		this.jobs.close();
	}
}
