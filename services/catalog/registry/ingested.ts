import { createHash } from "node:crypto";
import type { DatasetVersionAnnounced, IngestReceived } from "../../../events/ingest";
import { newDataset, newDatasetVersion, type Dataset, type DatasetVersion } from "./entities";

/**
 * Pure mappings from dataset versions announced by external producers (through the gateway's ingest gate) to
 * catalog entities. The announcement names its dataset by catalog id: the catalog registers it on first sight.
 */

/** The tag on everything the catalog registers from an ingested announcement. */
export const INGESTED_TAG = "ingested";

type Announcement = IngestReceived<DatasetVersionAnnounced>;

/** Who owns what a producer announced without naming an owner: the producer. */
const ownerOf = (e: Announcement) => e.payload.owner ?? `producer:${e.source}`;

export function ingestedDataset(e: Announcement, at: Date): Dataset {
	const p = e.payload;
	return newDataset(
		{ id: p.dataset_id, workspace: p.workspace, name: p.dataset_id, owner: ownerOf(e), tags: [INGESTED_TAG], description: `Dataset announced by producer ${e.source}` },
		at,
	);
}

/** One catalog version per (workspace, dataset, version label): a repeated announcement lands on the same entity. */
export function ingestedVersionId(p: Pick<DatasetVersionAnnounced, "workspace" | "dataset_id" | "version">): string {
	return `dsv-ingested-${createHash("sha256").update([p.workspace, p.dataset_id, p.version].join("\0")).digest("hex").slice(0, 24)}`;
}

export function ingestedVersion(e: Announcement, dataset: Dataset, at: Date): DatasetVersion {
	const p = e.payload;
	const classes = p.classes?.length ? `; classes ${p.classes.join(", ")}` : "";
	return newDatasetVersion(
		{
			id: ingestedVersionId(p),
			workspace: p.workspace,
			owner: ownerOf(e),
			dataset_id: dataset.id,
			version: p.version,
			description: `Announced by producer ${e.source} (ingest ${e.ingest_seq})${classes}`,
			tags: [INGESTED_TAG],
			manifest_uri: p.manifest_uri,
			file_count: p.file_count,
			bytes: p.bytes,
			class_distribution: p.class_distribution ?? {},
		},
		dataset,
		at,
	);
}
