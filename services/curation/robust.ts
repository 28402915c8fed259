/**
 * Robust z-scores: distance from the median in units of the (scaled) median absolute deviation, so a few extreme
 * values cannot hide themselves by inflating the spread. When more than half the values are equal (MAD = 0), the
 * mean absolute deviation stands in; when every value is equal, nothing is unusual.
 */
export function robustZ(values: readonly number[]): number[] {
	const median = (xs: number[]) => {
		const s = [...xs].sort((a, b) => a - b);
		const m = s.length >> 1;
		return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
	};
	const m = median([...values]);
	const deviations = values.map((v) => Math.abs(v - m));
	let spread = 1.4826 * median(deviations);
	if (spread === 0) spread = 1.2533 * (deviations.reduce((a, b) => a + b, 0) / values.length);
	return values.map((v) => (spread === 0 ? 0 : (v - m) / spread));
}
