import { randomUUID } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { resolveInside } from "./safe-path";

/**
 * Where curated versions are written for now: files under a local root (`<dataDir>/blobs`), each written to a
 * temporary name and renamed into place, so a reader never sees half a file. Same shape as the blob port's put,
 * which will replace it.
 */
export type PutBlob = (key: string, bytes: Buffer) => Promise<void>;

export function folderPut(root: string): PutBlob {
	return async (key, bytes) => {
		// Keys are built from dataset file names: one that climbs out of the root is refused.
		const inside = resolveInside("blobs", key);
		if (!inside) throw new Error(`blob key ${JSON.stringify(key)} is not a relative path inside the store`);
		const target = join(root, ...inside.split("/").slice(1));
		await mkdir(dirname(target), { recursive: true });
		const temp = `${target}.${randomUUID()}.tmp`;
		try {
			await writeFile(temp, bytes);
			await rename(temp, target);
		} catch (err) {
			await rm(temp, { force: true });
			throw err;
		}
	};
}
