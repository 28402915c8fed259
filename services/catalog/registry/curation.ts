import { createHash } from "node:crypto";
import type { CurationVersionCreated } from "../../../events/curation";
import { UNKNOWN_OWNER } from "./indexing";
import { newDataset, newDatasetVersion, type Dataset, type DatasetVersion } from "./entities";

/**
 * Pure mappings from the curation context's events to catalog entities. A curation names its dataset by folder
 * (`<workspace>/<dataset>` in the datasets root), not by catalog id, so the catalog resolves it: a catalog dataset
 * whose id is that name in the same workspace, else one it registers for the folder under a derived id.
 */

/** The tag on everything the catalog registers from curation: tells curated versions from registered ones. */
export const CURATED_TAG = "curated";

const hash = (...parts: string[]) => createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 24);

/** KV keys allow these characters only: a folder name outside them cannot be a catalog id. */
const KEY_SAFE = /^[-\w=]+$/;

/** The catalog id a curation's dataset name may already be registered under, if it can be an id at all. */
export function namedDatasetId(e: Pick<CurationVersionCreated, "dataset">): string | undefined {
	return KEY_SAFE.test(e.dataset) ? e.dataset : undefined;
}

/** The dataset the catalog registers for a folder no catalog dataset stands for: one per workspace and folder. */
export function folderDataset(e: Pick<CurationVersionCreated, "workspace" | "dataset">, at: Date): Dataset {
	return newDataset(
		{
			id: `ds-curated-${hash(e.workspace, e.dataset)}`,
			workspace: e.workspace,
			name: e.dataset,
			owner: UNKNOWN_OWNER,
			tags: [CURATED_TAG],
			description: `Dataset folder ${e.dataset}, registered by the catalog from its first curated version`,
		},
		at,
	);
}

/**
 * The id of a curated version in the catalog: from the workspace, the dataset and the content (curation's version
 * id is the hash of its listing), so a redelivered event or a second job curating the same content lands on the
 * same entity.
 */
export function curatedVersionId(e: Pick<CurationVersionCreated, "workspace" | "version_id">, dataset: Pick<Dataset, "id">): string {
	return `dsv-curated-${hash(e.workspace, dataset.id, e.version_id)}`;
}

/** The catalog's dataset version for a curated one; the full curation version id is its label. */
export function curatedVersion(e: CurationVersionCreated, dataset: Dataset, classes: Record<string, number>, derivedFrom: string[], at: Date): DatasetVersion {
	return newDatasetVersion(
		{
			id: curatedVersionId(e, dataset),
			workspace: e.workspace,
			owner: e.owner ?? dataset.owner,
			dataset_id: dataset.id,
			version: e.version_id,
			name: `${dataset.name} curated ${e.version_id.slice(0, 12)}`,
			description: `${e.format} dataset curated from ${e.dataset}: ${e.counts.images} images, ${e.counts.annotations} annotations, ${e.counts.classes} classes, ${e.counts.removed} removed`,
			tags: [CURATED_TAG, e.format],
			manifest_uri: e.manifest_key,
			file_count: e.counts.files,
			bytes: e.counts.bytes,
			class_distribution: classes,
			derived_from: derivedFrom,
		},
		dataset,
		at,
	);
}

/** The version a curation started from: the dataset's newest version not itself curated (curation reads its folder as it is now). */
export function curationSource(versions: DatasetVersion[]): string | undefined {
	const registered = versions.filter((v) => !v.tags.includes(CURATED_TAG));
	registered.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
	return registered.at(-1)?.id;
}
