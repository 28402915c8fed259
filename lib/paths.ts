import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

/** The repository root: the nearest folder above this file that holds package.json (works from src and dist). */
function findProjectRoot(start: string): string {
	let dir = start;
	while (!existsSync(join(dir, "package.json"))) {
		const parent = dirname(dir);
		if (parent === dir) throw new Error(`no package.json above ${start}`);
		dir = parent;
	}
	return dir;
}

export const PROJECT_ROOT = findProjectRoot(__dirname);
export const SCHEMAS_DIR = join(PROJECT_ROOT, "schemas");
