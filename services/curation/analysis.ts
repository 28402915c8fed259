import type { Dataset } from "./dataset";
import type { ImageEmbedding } from "./embedding/embed";
import { DEFAULT_NEAR_DISTANCE, findDuplicates } from "./duplicates";
import { kCenterGreedy } from "./k-center";
import { DEFAULT_OUTLIER_OPTIONS, findOutliers, type OutlierOptions } from "./outliers";

/** What curation found, by image id: duplicates to drop, outliers to show, and the samples to ask the user about. */
export interface Analysis {
	duplicates: Array<{ image_id: number; of: number; kind: "exact" | "near"; distance: number }>;
	outliers: Array<{ image_id: number; reasons: string[] }>;
	/** k-center picks among the images that are not duplicates, outliers first in line for review. */
	samples: number[];
}

export interface AnalysisOptions {
	nearDistance: number;
	outliers: OutlierOptions;
	samples: number;
}

export const DEFAULT_ANALYSIS: AnalysisOptions = { nearDistance: DEFAULT_NEAR_DISTANCE, outliers: DEFAULT_OUTLIER_OPTIONS, samples: 24 };

export function analyze(dataset: Dataset, embeddings: ReadonlyMap<number, ImageEmbedding>, options: AnalysisOptions = DEFAULT_ANALYSIS): Analysis {
	const ids = dataset.images.map((i) => i.id).filter((id) => embeddings.has(id));
	const items = ids.map((id) => embeddings.get(id)!);
	const duplicates = findDuplicates(items, options.nearDistance).map((d) => ({ image_id: ids[d.index]!, of: ids[d.of]!, kind: d.kind, distance: d.distance }));
	const dropped = new Set(duplicates.map((d) => d.image_id));
	const unique = ids.filter((id) => !dropped.has(id));
	const outliers = findOutliers(unique.map((id) => embeddings.get(id)!), options.outliers).map((o) => ({ image_id: unique[o.index]!, reasons: o.reasons }));
	const picks = kCenterGreedy(unique.map((id) => embeddings.get(id)!.thumbnail), options.samples).map((i) => unique[i]!);
	const flagged = outliers.map((o) => o.image_id);
	const samples = [...new Set([...flagged, ...picks])].slice(0, Math.max(options.samples, flagged.length));
	return { duplicates, outliers, samples };
}
