/**
 * What validation, decoding and conversion report. A problem never aborts the work: the offending entry is left
 * out and everything else is still checked, so one pass shows the user every defect with where it is.
 */
export type Severity = "error" | "warning";

export type ProblemCode =
	| "format_unknown"
	| "file_unreadable"
	| "syntax_error"
	| "structure_invalid"
	| "xml_forbidden"
	| "path_escape"
	| "id_invalid"
	| "id_duplicate"
	| "image_missing"
	| "image_unlabeled"
	| "label_orphan"
	| "category_missing"
	| "category_duplicate"
	| "class_out_of_range"
	| "class_unknown"
	| "names_missing"
	| "names_count_mismatch"
	| "bbox_invalid"
	| "bbox_not_positive"
	| "bbox_outside_image"
	| "segmentation_dropped"
	| "size_invalid"
	| "size_mismatch"
	| "image_unreadable"
	| "image_corrupt"
	| "image_too_large"
	| "label_ambiguous";

/** Where a problem is: the file, and the line (text formats) or the entry id (COCO JSON) inside it. */
export interface Location {
	file: string;
	line?: number;
	id?: string | number;
}

export interface Problem extends Location {
	severity: Severity;
	code: ProblemCode;
	message: string;
}

export class Problems {
	readonly list: Problem[] = [];

	error(code: ProblemCode, message: string, at: Location): void {
		this.list.push({ severity: "error", code, message, ...at });
	}

	warning(code: ProblemCode, message: string, at: Location): void {
		this.list.push({ severity: "warning", code, message, ...at });
	}

	get errors(): Problem[] {
		return this.list.filter((p) => p.severity === "error");
	}
}

/** One line per problem, for logs and CLI output: `error bbox_outside_image labels/a.txt:3 — message`. */
export function formatProblem(p: Problem): string {
	const where = p.line !== undefined ? `${p.file}:${p.line}` : p.id !== undefined ? `${p.file}#${p.id}` : p.file;
	return `${p.severity} ${p.code} ${where} — ${p.message}`;
}
