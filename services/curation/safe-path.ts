import { posix } from "node:path";

/**
 * Resolves a name taken from a dataset (a COCO file_name, a VOC <filename>) against the folder it belongs in.
 * Returns the normalized '/'-separated path inside the dataset, or undefined when the name is absolute, holds a
 * backslash or NUL, or climbs out of `base` (../../etc/passwd): such names come from untrusted uploads.
 */
export function resolveInside(base: string, name: string): string | undefined {
	if (!name || name.includes("\0") || name.includes("\\") || posix.isAbsolute(name) || /^[A-Za-z]:/.test(name)) return undefined;
	const joined = posix.normalize(posix.join(base, name));
	return joined.startsWith(`${posix.normalize(base)}/`) ? joined : undefined;
}
