import type { Progress } from "./embed-dataset";

/**
 * The curation job state machine, the only place a job's status changes:
 *   StartCuration → EMBEDDING → AWAITING_FEEDBACK (k-center samples) → SubmitFeedback → COMPLETED, or FAILED.
 * Pure: each command returns the new job and the transitions it made (the service publishes them as events);
 * an illegal command throws before anything changes.
 */
export const CURATION_STATUSES = ["PENDING", "EMBEDDING", "AWAITING_FEEDBACK", "COMPLETED", "FAILED"] as const;
export type CurationStatus = (typeof CURATION_STATUSES)[number];

const ALLOWED: Record<CurationStatus, readonly CurationStatus[]> = {
	PENDING: ["EMBEDDING", "FAILED"],
	EMBEDDING: ["AWAITING_FEEDBACK", "FAILED"],
	AWAITING_FEEDBACK: ["COMPLETED", "FAILED"],
	COMPLETED: [],
	FAILED: [],
};

export interface FeedbackSample {
	image_id: number;
	file: string;
	/** Why it is shown: outlier reasons, or "k-center" for a plain pick. */
	reasons: string[];
	/** A copy in the blob store, which the UI shows through a signed URL. */
	blob_key?: string;
}

export interface Feedback {
	image_id: number;
	accepted: boolean;
}

export interface CurationJob {
	id: string;
	project_id: string;
	dataset_uri: string;
	status: CurationStatus;
	progress: Progress;
	samples: FeedbackSample[];
	feedback?: Feedback[];
	version?: { version_id: string; manifest_key: string };
	error?: string;
	created_at: string;
	updated_at: string;
}

export interface JobTransition {
	job_id: string;
	from: CurationStatus;
	to: CurationStatus;
	at: string;
	reason?: string;
}

export interface Step {
	job: CurationJob;
	transitions: JobTransition[];
}

export class IllegalCurationTransition extends Error {
	override name = "IllegalCurationTransition";
	constructor(readonly jobId: string, readonly from: CurationStatus, readonly to: CurationStatus) {
		super(`curation ${jobId} cannot go from ${from} to ${to}` + (ALLOWED[from].length ? ` (from ${from} it may go to ${ALLOWED[from].join(", ")})` : ` (${from} is final)`));
	}
}

/** A command that is legal in this state but whose input is not (feedback on an image that was not asked about …). */
export class CurationInputError extends Error {
	override name = "CurationInputError";
}

function go(job: CurationJob, to: CurationStatus, at: Date, patch: Partial<CurationJob> = {}, reason?: string): Step {
	if (!ALLOWED[job.status].includes(to)) throw new IllegalCurationTransition(job.id, job.status, to);
	const stamp = at.toISOString();
	return {
		job: { ...job, ...patch, status: to, updated_at: stamp },
		transitions: [{ job_id: job.id, from: job.status, to, at: stamp, ...(reason ? { reason } : {}) }],
	};
}

export function startCuration(id: string, input: { project_id: string; dataset_uri: string }, at: Date): Step {
	const stamp = at.toISOString();
	const pending: CurationJob = { id, ...input, status: "PENDING", progress: { processed: 0, total: 0 }, samples: [], created_at: stamp, updated_at: stamp };
	return go(pending, "EMBEDDING", at);
}

/** Progress while embedding; never goes backwards, never past the total. Returns the value to publish. */
export function reportProgress(job: CurationJob, progress: Progress, at: Date): { job: CurationJob; progress: Progress } {
	if (job.status !== "EMBEDDING") throw new CurationInputError(`curation ${job.id} is ${job.status}; progress is only reported while EMBEDDING`);
	const { processed, total } = progress;
	if (!Number.isInteger(processed) || !Number.isInteger(total) || processed < 0 || processed > total) {
		throw new CurationInputError(`progress ${processed}/${total} is not a count between 0 and the total`);
	}
	if (processed < job.progress.processed) return { job, progress: job.progress };
	return { job: { ...job, progress: { processed, total }, updated_at: at.toISOString() }, progress: { processed, total } };
}

export function awaitFeedback(job: CurationJob, samples: FeedbackSample[], at: Date): Step {
	return go(job, "AWAITING_FEEDBACK", at, { samples });
}

/** Records the reviewer's decisions; each must be about a sample shown, once. The job completes separately, once the version is written. */
export function submitFeedback(job: CurationJob, feedback: Feedback[], at: Date): CurationJob {
	if (job.status !== "AWAITING_FEEDBACK") throw new CurationInputError(`curation ${job.id} is ${job.status}; feedback is accepted only while AWAITING_FEEDBACK`);
	if (job.feedback) throw new CurationInputError(`feedback for curation ${job.id} was already submitted`);
	const shown = new Set(job.samples.map((s) => s.image_id));
	const seen = new Set<number>();
	for (const f of feedback) {
		if (!shown.has(f.image_id)) throw new CurationInputError(`image ${f.image_id} was not among the samples of curation ${job.id}`);
		if (seen.has(f.image_id)) throw new CurationInputError(`image ${f.image_id} has more than one decision`);
		seen.add(f.image_id);
	}
	return { ...job, feedback, updated_at: at.toISOString() };
}

export function complete(job: CurationJob, version: { version_id: string; manifest_key: string }, at: Date): Step {
	if (job.status === "AWAITING_FEEDBACK" && !job.feedback) throw new CurationInputError(`curation ${job.id} has no feedback yet; it cannot complete`);
	return go(job, "COMPLETED", at, { version });
}

export function fail(job: CurationJob, error: string, at: Date): Step {
	return go(job, "FAILED", at, { error }, error);
}

/** The image ids the reviewer rejected. */
export const rejectedIds = (job: CurationJob) => (job.feedback ?? []).filter((f) => !f.accepted).map((f) => f.image_id);
