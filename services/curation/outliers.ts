import type { ImageEmbedding } from "./embedding/embed";
import { robustZ } from "./robust";

/**
 * Images unlike the rest: far from their k nearest neighbours in thumbnail space, or with an unusual size, aspect
 * ratio or brightness. Flagged, not removed: the user decides in the feedback step. The neighbour search is exact
 * (O(n²) over 192-value vectors), meant for the few thousand images a feedback round looks at.
 */
export interface Outlier {
	index: number;
	reasons: string[];
}

export interface OutlierOptions {
	k: number;
	/** Robust z-score above which a value is unusual. */
	threshold: number;
}

export const DEFAULT_OUTLIER_OPTIONS: OutlierOptions = { k: 5, threshold: 3.5 };

export function squaredDistance(a: Float32Array, b: Float32Array): number {
	let s = 0;
	for (let i = 0; i < a.length; i++) {
		const d = a[i]! - b[i]!;
		s += d * d;
	}
	return s;
}

/** Mean distance from each vector to its k nearest others. */
export function knnDistances(vectors: readonly Float32Array[], k: number): number[] {
	return vectors.map((v, i) => {
		const d = vectors.flatMap((w, j) => (i === j ? [] : [Math.sqrt(squaredDistance(v, w))])).sort((a, b) => a - b);
		const near = d.slice(0, k);
		return near.reduce((a, b) => a + b, 0) / near.length;
	});
}

export function findOutliers(items: readonly ImageEmbedding[], options: OutlierOptions = DEFAULT_OUTLIER_OPTIONS): Outlier[] {
	if (items.length <= options.k) return [];
	const reasons = items.map(() => [] as string[]);
	const flag = (values: number[], describe: (i: number, z: number) => string, twoSided = true) =>
		robustZ(values).forEach((z, i) => {
			if ((twoSided ? Math.abs(z) : z) > options.threshold) reasons[i]!.push(describe(i, z));
		});
	flag(knnDistances(items.map((e) => e.thumbnail), options.k), (_, z) => `unlike its ${options.k} nearest neighbours (robust z ${z.toFixed(1)})`, false);
	flag(items.map((e) => Math.log(e.width * e.height)), (i) => `unusual size ${items[i]!.width}×${items[i]!.height}`);
	flag(items.map((e) => Math.log(e.width / e.height)), (i) => `unusual aspect ratio ${(items[i]!.width / items[i]!.height).toFixed(2)}`);
	flag(items.map((e) => e.brightness), (i, z) => `unusually ${z > 0 ? "bright" : "dark"} (mean ${(items[i]!.brightness * 100).toFixed(0)} %)`);
	return reasons.flatMap((r, index) => (r.length ? [{ index, reasons: r }] : []));
}
