/**
 * Metric time series with bounded memory. A series keeps its newest samples raw and folds older ones into
 * buckets (count, min, max, sum, last): whenever the buckets fill their half of the capacity, neighbours are merged
 * pairwise, halving the resolution of the past. A run of a million heartbeats therefore stays at `capacity`
 * entries while its spikes (min/max) and its shape survive.
 */

/** One point of a query: a raw sample (count 1) or an aggregate of `count` consecutive samples. */
export interface SeriesPoint {
	/** Time of the last sample in the point (ms since the epoch, message time). */
	t: number;
	/** Time of the first sample in the point. */
	t_first: number;
	count: number;
	min: number;
	max: number;
	mean: number;
	last: number;
}

export interface SeriesQuery {
	/** Inclusive bounds in ms; a bucket that overlaps a bound is kept whole. */
	from?: number;
	to?: number;
	maxPoints: number;
}

interface Bucket {
	t_first: number;
	t: number;
	count: number;
	min: number;
	max: number;
	sum: number;
	last: number;
}

export const DEFAULT_SERIES_CAPACITY = 1_000;

function toPoint(b: Bucket): SeriesPoint {
	return { t: b.t, t_first: b.t_first, count: b.count, min: b.min, max: b.max, mean: b.sum / b.count, last: b.last };
}

/** Merges `b` (later) into `a` (earlier), in place. */
function absorb(a: Bucket, b: Bucket): void {
	a.t = b.t;
	a.count += b.count;
	a.min = Math.min(a.min, b.min);
	a.max = Math.max(a.max, b.max);
	a.sum += b.sum;
	a.last = b.last;
}

function fromPoint(p: SeriesPoint): Bucket {
	return { t_first: p.t_first, t: p.t, count: p.count, min: p.min, max: p.max, sum: p.mean * p.count, last: p.last };
}

/**
 * At most `maxPoints` points covering the same samples: consecutive points falling in the same of `maxPoints`
 * equal time slots are merged (an even time axis suits a chart better than merging every k points).
 */
export function downsample(points: SeriesPoint[], maxPoints: number): SeriesPoint[] {
	if (points.length <= maxPoints) return points;
	const start = points[0]!.t_first;
	const span = points[points.length - 1]!.t - start;
	const slotOf = (p: SeriesPoint, i: number) =>
		span > 0 ? Math.min(maxPoints - 1, Math.floor(((p.t - start) / span) * maxPoints)) : Math.floor((i * maxPoints) / points.length);
	const out: Bucket[] = [];
	let slot = -1;
	points.forEach((p, i) => {
		const s = slotOf(p, i);
		if (s === slot) absorb(out[out.length - 1]!, fromPoint(p));
		else out.push(fromPoint(p));
		slot = s;
	});
	return out.map(toPoint);
}

/** First index whose time is >= t in a sorted array (by `timeOf`). */
function lowerBound(length: number, timeOf: (i: number) => number, t: number): number {
	let lo = 0;
	let hi = length;
	while (lo < hi) {
		const mid = (lo + hi) >>> 1;
		if (timeOf(mid) < t) lo = mid + 1;
		else hi = mid;
	}
	return lo;
}

export class MetricSeries {
	/** Newest samples, as parallel arrays (no object per sample on the hot path). */
	private readonly rawT: number[] = [];
	private readonly rawV: number[] = [];
	/** Older samples, oldest first; the last bucket stays open until it holds `width` samples. */
	private readonly buckets: Bucket[] = [];
	/** Samples per bucket; doubles at each compaction. */
	private width = 1;
	private total = 0;
	private newest = -Infinity;
	private readonly rawCap: number;
	private readonly bucketCap: number;

	constructor(capacity = DEFAULT_SERIES_CAPACITY) {
		if (!Number.isInteger(capacity) || capacity < 8) throw new Error(`series capacity must be an integer >= 8, got ${capacity}`);
		this.rawCap = Math.floor(capacity / 2);
		this.bucketCap = capacity - this.rawCap;
	}

	/** Samples added since the start (what the stored entries stand for). */
	get samples(): number {
		return this.total;
	}

	/** Entries held in memory: never more than the capacity. */
	get size(): number {
		return this.rawT.length + this.buckets.length;
	}


	/** Time never goes back within a series: a late sample is placed at the newest time (queries rely on the order). */
	add(t: number, value: number): void {
		if (t < this.newest) t = this.newest;
		this.newest = t;
		this.rawT.push(t);
		this.rawV.push(value);
		this.total++;
		// Folding half of the raw window at once keeps the cost per sample constant (one splice per rawCap/2 adds).
		if (this.rawT.length > this.rawCap) this.fold(this.rawT.length - Math.floor(this.rawCap / 2));
	}

	private fold(n: number): void {
		const ts = this.rawT.splice(0, n);
		const vs = this.rawV.splice(0, n);
		for (let i = 0; i < n; i++) {
			const t = ts[i]!;
			const v = vs[i]!;
			const open = this.buckets[this.buckets.length - 1];
			if (open && open.count < this.width) {
				open.t = t;
				open.count++;
				if (v < open.min) open.min = v;
				if (v > open.max) open.max = v;
				open.sum += v;
				open.last = v;
			} else {
				this.buckets.push({ t_first: t, t, count: 1, min: v, max: v, sum: v, last: v });
				if (this.buckets.length > this.bucketCap) this.compact();
			}
		}
	}

	/** Halves the resolution of the past: merges neighbouring buckets pairwise. */
	private compact(): void {
		const merged: Bucket[] = [];
		for (let i = 0; i < this.buckets.length; i += 2) {
			const a = this.buckets[i]!;
			const b = this.buckets[i + 1];
			if (b) absorb(a, b);
			merged.push(a);
		}
		this.buckets.length = 0;
		this.buckets.push(...merged);
		this.width *= 2;
	}

	/** Points in [from, to], oldest first, at most `maxPoints` (merged further on read when needed). */
	query(q: SeriesQuery): SeriesPoint[] {
		const from = q.from ?? -Infinity;
		const to = q.to ?? Infinity;
		const out: SeriesPoint[] = [];
		for (const b of this.buckets) if (b.t >= from && b.t_first <= to) out.push(toPoint(b));
		const start = lowerBound(this.rawT.length, (i) => this.rawT[i]!, from);
		for (let i = start; i < this.rawT.length && this.rawT[i]! <= to; i++) {
			const t = this.rawT[i]!;
			const v = this.rawV[i]!;
			out.push({ t, t_first: t, count: 1, min: v, max: v, mean: v, last: v });
		}
		return downsample(out, q.maxPoints);
	}
}

/** The series of one run, by metric name. */
export class RunSeries {
	private readonly byMetric = new Map<string, MetricSeries>();

	constructor(private readonly capacity = DEFAULT_SERIES_CAPACITY) {}

	add(t: number, metrics: Record<string, number>): void {
		const names = Object.keys(metrics);
		for (let i = 0; i < names.length; i++) {
			const name = names[i]!;
			let s = this.byMetric.get(name);
			if (!s) this.byMetric.set(name, (s = new MetricSeries(this.capacity)));
			s.add(t, metrics[name]!);
		}
	}

	metric(name: string): MetricSeries | undefined {
		return this.byMetric.get(name);
	}

	metricNames(): string[] {
		return [...this.byMetric.keys()].sort();
	}
}
