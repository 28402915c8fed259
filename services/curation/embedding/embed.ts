import { createHash } from "node:crypto";
import { decodeImage, DEFAULT_IMAGE_LIMITS, type ImageLimits } from "../decode";
import type { ProblemCode } from "../problems";
import { phash, PHASH_SIZE, type PHash } from "./phash";
import { areaAverageRgb, luma } from "./resize";

/**
 * Everything curation needs from one image, computed from a single decode and one 32×32 downscale:
 * the file's sha256 (exact duplicates), the pHash (near duplicates), an 8×8×3 thumbnail vector in [0, 1]
 * (diversity, outliers) and the facts the size/brightness outlier checks use.
 */
export interface ImageEmbedding {
	sha256: string;
	phash: PHash;
	thumbnail: Float32Array;
	width: number;
	height: number;
	/** Mean luma, 0–1. */
	brightness: number;
}

export const THUMBNAIL_SIDE = 8;

/** 4×4 block means of the 32×32 RGB, scaled to [0, 1]. */
function thumbnailOf(rgb32: Float32Array): Float32Array {
	const block = PHASH_SIZE / THUMBNAIL_SIDE;
	const out = new Float32Array(THUMBNAIL_SIDE * THUMBNAIL_SIDE * 3);
	for (let y = 0; y < PHASH_SIZE; y++) {
		for (let x = 0; x < PHASH_SIZE; x++) {
			const o = (Math.floor(y / block) * THUMBNAIL_SIDE + Math.floor(x / block)) * 3;
			const i = (y * PHASH_SIZE + x) * 3;
			out[o] += rgb32[i]!, out[o + 1] += rgb32[i + 1]!, out[o + 2] += rgb32[i + 2]!;
		}
	}
	for (let i = 0; i < out.length; i++) out[i] /= block * block * 255;
	return out;
}

export type Embedded = { ok: true; embedding: ImageEmbedding } | { ok: false; code: ProblemCode; message: string };

export function embedImage(bytes: Buffer, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Embedded {
	const decoded = decodeImage(bytes, limits);
	if (!decoded.ok) return decoded;
	const rgb = areaAverageRgb(decoded.pixels, PHASH_SIZE, PHASH_SIZE);
	const gray = luma(rgb);
	let sum = 0;
	for (const v of gray) sum += v;
	return {
		ok: true,
		embedding: {
			sha256: createHash("sha256").update(bytes).digest("hex"),
			phash: phash(gray),
			thumbnail: thumbnailOf(rgb),
			width: decoded.pixels.width,
			height: decoded.pixels.height,
			brightness: sum / gray.length / 255,
		},
	};
}
