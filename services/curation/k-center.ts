import { squaredDistance } from "./outliers";

/**
 * k-center greedy: start from one point, then repeatedly take the point farthest from everything taken so far.
 * The picks cover the space (no two near each other), which is what a human reviewing a handful of samples needs.
 * Deterministic: the first point is `first` (default: the one nearest the mean), ties go to the lowest index.
 */
export function kCenterGreedy(vectors: readonly Float32Array[], k: number, first?: number): number[] {
	const n = vectors.length;
	if (n === 0 || k <= 0) return [];
	if (first !== undefined && (!Number.isInteger(first) || first < 0 || first >= n)) throw new RangeError(`the first point ${first} is not one of the ${n} vectors`);
	const start = first ?? nearestToMean(vectors);
	const picked = [start];
	const nearest = vectors.map((v) => squaredDistance(v, vectors[start]!));
	while (picked.length < Math.min(k, n)) {
		let best = -1;
		for (let i = 0; i < n; i++) if (best < 0 || nearest[i]! > nearest[best]!) best = i;
		if (nearest[best]! === 0) break; // only copies of picked points remain
		picked.push(best);
		vectors.forEach((v, i) => (nearest[i] = Math.min(nearest[i]!, squaredDistance(v, vectors[best]!))));
	}
	return picked;
}

function nearestToMean(vectors: readonly Float32Array[]): number {
	const mean = new Float32Array(vectors[0]!.length);
	for (const v of vectors) v.forEach((x, i) => (mean[i] += x / vectors.length));
	let best = 0;
	vectors.forEach((v, i) => {
		if (squaredDistance(v, mean) < squaredDistance(vectors[best]!, mean)) best = i;
	});
	return best;
}
