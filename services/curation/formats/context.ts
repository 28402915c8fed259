import type { ImageLimits } from "../decode";
import type { Dataset } from "../dataset";
import type { DatasetFiles } from "../files";
import type { Problems } from "../problems";

/** What a format reader gets: the files, their sorted listing, where to report, and the image limits. */
export interface ReadContext {
	files: DatasetFiles;
	paths: readonly string[];
	problems: Problems;
	limits: ImageLimits;
}

export type FormatReader = (ctx: ReadContext) => Promise<Dataset>;

/** A format writer's output: annotation files to create and, per image id, where its bytes go. */
export interface Written {
	files: Map<string, Buffer>;
	images: Map<number, string>;
}

export type FormatWriter = (dataset: Dataset, problems: Problems) => Written;

export const text = (s: string) => Buffer.from(s, "utf8");
