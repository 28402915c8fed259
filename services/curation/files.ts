import { constants } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { join, relative, sep } from "node:path";

/**
 * The files of one dataset, addressed by '/'-separated paths relative to its root. The folder adapter serves
 * tests, the benchmark and the embedded store; the service can put a blob-store listing behind the same shape.
 */
export interface DatasetFiles {
	/** Every file, sorted. */
	list(): Promise<string[]>;
	/** Rejects when the file does not exist or cannot be read. */
	read(path: string): Promise<Buffer>;
}

/** A dataset in a local folder. Symbolic links are skipped: they could point outside the upload. */
export function folderFiles(root: string): DatasetFiles {
	return {
		async list() {
			const out: string[] = [];
			const walk = async (dir: string): Promise<void> => {
				for (const entry of await readdir(dir, { withFileTypes: true })) {
					const full = join(dir, entry.name);
					if (entry.isDirectory()) await walk(full);
					else if (entry.isFile()) out.push(relative(root, full).split(sep).join("/"));
				}
			};
			await walk(root);
			return out.sort();
		},
		async read(path) {
			// O_NOFOLLOW: a file swapped for a link after listing is refused too.
			const handle = await open(join(root, ...path.split("/")), constants.O_RDONLY | constants.O_NOFOLLOW);
			try {
				return await handle.readFile();
			} finally {
				await handle.close();
			}
		},
	};
}

/** A dataset held in memory (converter output, tests). */
export function memoryFiles(entries: ReadonlyMap<string, Buffer>): DatasetFiles {
	return {
		list: async () => [...entries.keys()].sort(),
		async read(path) {
			const bytes = entries.get(path);
			if (!bytes) throw new Error(`${path} does not exist`);
			return bytes;
		},
	};
}
