import type { BlobStore } from "../../lib/blob";

/**
 * The class distribution of a curated version, read from its manifest in the blob store (curation's event carries
 * the counts but not the classes). Undefined when the manifest is not there or not readable: the version is still
 * cataloged, without classes.
 */
export async function curatedClasses(blobs: BlobStore, manifestKey: string): Promise<Record<string, number> | undefined> {
	const stream = await blobs.read(manifestKey).catch(() => undefined);
	if (stream === undefined) return undefined;
	const chunks: Buffer[] = [];
	for await (const chunk of stream) chunks.push(chunk as Buffer);
	try {
		const manifest = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { class_distribution?: unknown };
		const d = manifest.class_distribution;
		if (typeof d !== "object" || d === null || Array.isArray(d)) return undefined;
		return Object.fromEntries(Object.entries(d).filter((kv): kv is [string, number] => Number.isInteger(kv[1]) && (kv[1] as number) >= 0));
	} catch {
		return undefined;
	}
}
