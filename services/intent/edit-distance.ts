/**
 * Damerau-Levenshtein distance (optimal string alignment: insertions, deletions, substitutions and swaps of two
 * neighbours), bounded: returns `bound + 1` as soon as the distance must exceed `bound`, so scanning a catalog for
 * a typo costs little.
 */
export function editDistance(a: string, b: string, bound: number): number {
	if (Math.abs(a.length - b.length) > bound) return bound + 1;
	let prev2: number[] = [];
	let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
	for (let i = 1; i <= a.length; i++) {
		const row = [i];
		let rowMin = i;
		for (let j = 1; j <= b.length; j++) {
			const cost = a[i - 1] === b[j - 1] ? 0 : 1;
			let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
			if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
			row.push(d);
			rowMin = Math.min(rowMin, d);
		}
		if (rowMin > bound) return bound + 1;
		prev2 = prev;
		prev = row;
	}
	return Math.min(prev[b.length]!, bound + 1);
}
