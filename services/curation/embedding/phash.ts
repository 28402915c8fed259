/**
 * DCT perceptual hash: the 8×8 lowest frequencies of a 32×32 grayscale image, one bit per coefficient (above or
 * below their median). Re-encoding, mild blur and brightness shifts move few bits; different pictures differ in
 * about half of them. Kept as two 32-bit halves so Hamming distance is two popcounts.
 */
export interface PHash {
	hi: number;
	lo: number;
}

const N = 32;
const K = 8;
/** COS[u][x] = cos((2x + 1)uπ / 2N), the DCT-II basis. */
const COS = Array.from({ length: K }, (_, u) => Float64Array.from({ length: N }, (_, x) => Math.cos(((2 * x + 1) * u * Math.PI) / (2 * N))));

export const PHASH_SIZE = N;

export function phash(gray: Float32Array): PHash {
	if (gray.length !== N * N) throw new Error(`pHash needs a ${N}×${N} grayscale image`);
	// Separable DCT: rows first (only the K lowest frequencies), then columns.
	const rows = new Float64Array(N * K);
	for (let y = 0; y < N; y++) {
		for (let u = 0; u < K; u++) {
			let s = 0;
			for (let x = 0; x < N; x++) s += gray[y * N + x]! * COS[u]![x]!;
			rows[y * K + u] = s;
		}
	}
	const coef = new Float64Array(K * K);
	for (let v = 0; v < K; v++) {
		for (let u = 0; u < K; u++) {
			let s = 0;
			for (let y = 0; y < N; y++) s += rows[y * K + u]! * COS[v]![y]!;
			coef[v * K + u] = s;
		}
	}
	// The DC term is the mean brightness: left out of the median so a brighter copy keeps its hash.
	const median = [...coef.subarray(1)].sort((a, b) => a - b)[(K * K - 1) >> 1]!;
	let hi = 0, lo = 0;
	for (let i = 1; i < K * K; i++) {
		if (coef[i]! <= median) continue;
		if (i < 32) hi |= 1 << (31 - i);
		else lo |= 1 << (63 - i);
	}
	return { hi: hi >>> 0, lo: lo >>> 0 };
}

function popcount(n: number): number {
	n -= (n >>> 1) & 0x55555555;
	n = (n & 0x33333333) + ((n >>> 2) & 0x33333333);
	return (((n + (n >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function hamming(a: PHash, b: PHash): number {
	return popcount(a.hi ^ b.hi) + popcount(a.lo ^ b.lo);
}

export function phashHex(h: PHash): string {
	return h.hi.toString(16).padStart(8, "0") + h.lo.toString(16).padStart(8, "0");
}

/** Bits [from, to) of the hash (from 0 = most significant), for bucketing near-duplicate candidates. */
export function phashBits(h: PHash, from: number, to: number): number {
	let out = 0;
	for (let i = from; i < to; i++) out = out * 2 + ((i < 32 ? h.hi >>> (31 - i) : h.lo >>> (63 - i)) & 1);
	return out;
}
