import { checkAnnotations } from "./annotation-checks";
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from "./decode";
import type { Dataset, DatasetFormat } from "./dataset";
import { detectFormat } from "./detect";
import type { DatasetFiles } from "./files";
import { READERS } from "./formats/registry";
import { Problems, type Problem } from "./problems";

export interface ReadResult {
	format: DatasetFormat | undefined;
	/** Only the entries that passed; what failed is in `problems`. */
	dataset: Dataset;
	problems: Problem[];
	/** True when no problem is an error. */
	valid: boolean;
}

/** Detects (or takes) the format, reads and validates the dataset: the first step of every curation. */
export async function readDataset(files: DatasetFiles, options: { format?: DatasetFormat; limits?: ImageLimits } = {}): Promise<ReadResult> {
	const problems = new Problems();
	const paths = await files.list();
	const format = options.format ?? detectFormat(paths);
	if (!format) {
		problems.error("format_unknown", "the files are not a COCO, YOLO, Pascal VOC or ImageNet-folder dataset", { file: "." });
		return { format, dataset: { format: "coco", images: [], categories: [], annotations: [] }, problems: problems.list, valid: false };
	}
	const read = await READERS[format]({ files, paths, problems, limits: options.limits ?? DEFAULT_IMAGE_LIMITS });
	const dataset = checkAnnotations(read, problems);
	return { format, dataset, problems: problems.list, valid: problems.errors.length === 0 };
}
