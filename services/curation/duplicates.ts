import { hamming, phashBits } from "./embedding/phash";
import type { ImageEmbedding } from "./embedding/embed";

/**
 * Exact duplicates (same bytes) and near duplicates (pHash within `maxDistance` bits). Leader clustering in input
 * order: the first image of a group is kept and every later one within the distance of *that* image is its
 * duplicate, so groups never chain dissimilar pictures together and the outcome is the same on every run.
 */
export interface Duplicate {
	index: number;
	of: number;
	kind: "exact" | "near";
	distance: number;
}

export const DEFAULT_NEAR_DISTANCE = 6;

export function findDuplicates(items: readonly ImageEmbedding[], maxDistance = DEFAULT_NEAR_DISTANCE): Duplicate[] {
	if (!Number.isInteger(maxDistance) || maxDistance < 0 || maxDistance > 31) throw new RangeError("the near-duplicate distance must be an integer from 0 to 31");
	const out: Duplicate[] = [];
	const taken = new Set<number>();
	const firstBySha = new Map<string, number>();
	items.forEach((e, i) => {
		const first = firstBySha.get(e.sha256);
		if (first === undefined) firstBySha.set(e.sha256, i);
		else out.push({ index: i, of: first, kind: "exact", distance: 0 }), taken.add(i);
	});
	// Pigeonhole: two hashes within d bits agree exactly on at least one of d + 1 bands, so only images sharing a
	// band value are compared.
	const bands = maxDistance + 1;
	const edges = Array.from({ length: bands + 1 }, (_, b) => Math.round((b * 64) / bands));
	const buckets = new Map<string, number[]>();
	const keys = items.map((e) => edges.slice(0, bands).map((from, b) => `${b}:${phashBits(e.phash, from, edges[b + 1]!)}`));
	items.forEach((_, i) => {
		if (taken.has(i)) return;
		for (const key of keys[i]!) buckets.set(key, [...(buckets.get(key) ?? []), i]);
	});
	items.forEach((leader, i) => {
		if (taken.has(i)) return;
		const candidates = new Set<number>();
		for (const key of keys[i]!) for (const j of buckets.get(key)!) if (j > i && !taken.has(j)) candidates.add(j);
		for (const j of [...candidates].sort((a, b) => a - b)) {
			const distance = hamming(leader.phash, items[j]!.phash);
			if (distance <= maxDistance) out.push({ index: j, of: i, kind: "near", distance }), taken.add(j);
		}
	});
	return out.sort((a, b) => a.index - b.index);
}
