import { createHash } from "node:crypto";
import type { Dataset, DatasetFormat } from "./dataset";
import type { DatasetFiles } from "./files";
import { WRITERS } from "./formats/registry";
import { Problems, type Problem } from "./problems";

/**
 * A curated dataset version: the kept images and their annotation files, in the dataset's own format, described by
 * a manifest whose id is the sha256 of the sorted listing (`sha256  bytes  path` lines). Nothing time- or
 * order-dependent goes into it, so the same curation gives the same id on every run and every machine.
 */
export interface ManifestFile {
	path: string;
	sha256: string;
	bytes: number;
}

export interface CuratedManifest {
	version_id: string;
	format: DatasetFormat;
	counts: { images: number; annotations: number; classes: number; removed: number; files: number; bytes: number };
	/** Boxes per class name (and whole-image labels), every class listed, zeros included. */
	class_distribution: Record<string, number>;
	files: ManifestFile[];
	removed: Array<{ file: string; reason: string }>;
}

export interface CuratedVersion {
	manifest: CuratedManifest;
	files: Map<string, Buffer>;
	problems: Problem[];
}

export const MANIFEST_NAME = "_manifest.json";

const sha256 = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex");

/** The version id of a listing, whatever order it comes in. */
export function versionIdOf(files: readonly ManifestFile[]): string {
	const lines = files.map((f) => `${f.sha256}  ${f.bytes}  ${f.path}\n`).sort();
	return sha256(lines.join(""));
}

/** `removed`: image id → why it is left out (duplicate, rejected in review, cannot be decoded). */
export async function buildCuratedVersion(dataset: Dataset, source: DatasetFiles, removed: ReadonlyMap<number, string>): Promise<CuratedVersion> {
	const problems = new Problems();
	const kept: Dataset = {
		...dataset,
		images: dataset.images.filter((i) => !removed.has(i.id)),
		annotations: dataset.annotations.filter((a) => !removed.has(a.image_id)),
	};
	const written = WRITERS[dataset.format](kept, problems);
	const files = new Map(written.files);
	const byId = new Map(dataset.images.map((i) => [i.id, i]));
	for (const [id, target] of written.images) files.set(target, await source.read(byId.get(id)!.path));
	const listing = [...files].map(([path, bytes]) => ({ path, sha256: sha256(bytes), bytes: bytes.length })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
	const distribution: Record<string, number> = Object.fromEntries(dataset.categories.map((c) => [c.name, 0]));
	const names = new Map(dataset.categories.map((c) => [c.id, c.name]));
	for (const a of kept.annotations) distribution[names.get(a.category_id)!]! += 1;
	for (const i of kept.images) if (i.label !== undefined) distribution[names.get(i.label)!]! += 1;
	const manifest: CuratedManifest = {
		version_id: versionIdOf(listing),
		format: dataset.format,
		counts: {
			images: written.images.size,
			annotations: kept.annotations.length,
			classes: dataset.categories.length,
			removed: removed.size,
			files: listing.length,
			bytes: listing.reduce((s, f) => s + f.bytes, 0),
		},
		class_distribution: distribution,
		files: listing,
		removed: [...removed].map(([id, reason]) => ({ file: byId.get(id)?.file ?? `image ${id}`, reason })).sort((a, b) => (a.file < b.file ? -1 : 1)),
	};
	return { manifest, files, problems: problems.list };
}

/**
 * Stores a version under `<prefix>/<version_id>/`, the manifest last: a reader that finds the manifest finds every
 * file it lists. `put` is the blob port's write (the service adapts BlobStore to it). Returns the manifest's key.
 */
export async function writeCuratedVersion(version: CuratedVersion, put: (key: string, bytes: Buffer) => Promise<void>, prefix = "curated"): Promise<string> {
	const root = `${prefix}/${version.manifest.version_id}`;
	for (const [path, bytes] of [...version.files].sort(([a], [b]) => (a < b ? -1 : 1))) await put(`${root}/${path}`, bytes);
	const key = `${root}/${MANIFEST_NAME}`;
	await put(key, Buffer.from(`${JSON.stringify(version.manifest, null, 1)}\n`));
	return key;
}

/** Why each image leaves the curated version: duplicates found by analysis, then the reviewer's rejections. */
export function removals(
	dataset: Dataset,
	duplicates: ReadonlyArray<{ image_id: number; of: number; kind: "exact" | "near"; distance: number }>,
	rejected: readonly number[],
	undecodable: readonly number[] = [],
): Map<number, string> {
	const files = new Map(dataset.images.map((i) => [i.id, i.file]));
	const out = new Map<number, string>();
	for (const id of undecodable) out.set(id, "the image cannot be decoded");
	for (const d of duplicates) out.set(d.image_id, d.kind === "exact" ? `exact duplicate of ${files.get(d.of)}` : `near duplicate of ${files.get(d.of)} (pHash distance ${d.distance})`);
	for (const id of rejected) if (!out.has(id)) out.set(id, "rejected in review");
	return out;
}
