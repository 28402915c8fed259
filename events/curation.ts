import { defineEvent } from "./definition";

/** The curation context's events, in EVENT_CATALOG through CURATION_EVENTS (schemas in `schemas/events/curation.*`). */

export type CurationJobStatus = "PENDING" | "EMBEDDING" | "AWAITING_FEEDBACK" | "COMPLETED" | "FAILED";

/** A curation job changed status. De-duplicated per status reached: the message id is `<job>:<status>`. */
export interface CurationJobTransitioned {
	job_id: string;
	workspace: string;
	dataset: string;
	from: CurationJobStatus;
	to: CurationJobStatus;
	at: string;
	reason?: string;
}

/** Images embedded so far (every few images while EMBEDDING). Message id `<job>:progress:<processed>`. */
export interface CurationJobProgressed {
	job_id: string;
	workspace: string;
	processed: number;
	total: number;
}

/** A curated dataset version was written: its manifest is at `manifest_key` in the blob store. Message id `<job>:version`. */
export interface CurationVersionCreated {
	job_id: string;
	workspace: string;
	dataset: string;
	version_id: string;
	manifest_key: string;
	format: "coco" | "yolo" | "voc" | "imagenet";
	counts: { images: number; annotations: number; classes: number; removed: number; files: number; bytes: number };
	/** Images per class in the curated version. */
	class_distribution?: Record<string, number>;
	/** The catalog dataset version curated from, when the job was started with one. */
	source_version_id?: string;
	/** Who started the job. */
	owner?: string;
}

export const CurationJobTransitioned = defineEvent<CurationJobTransitioned>("curation", "job", "transitioned");
export const CurationJobProgressed = defineEvent<CurationJobProgressed>("curation", "job", "progressed");
export const CurationVersionCreated = defineEvent<CurationVersionCreated>("curation", "version", "created");

export const CURATION_EVENTS = [CurationJobTransitioned, CurationJobProgressed, CurationVersionCreated] as const;
