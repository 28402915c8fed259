import * as jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { readImageHeader } from "./image-header";
import type { ProblemCode } from "./problems";

export interface Pixels {
	width: number;
	height: number;
	/** 8-bit RGBA, row by row. */
	rgba: Uint8Array;
}

export interface ImageLimits {
	/** Images with more pixels are refused before decoding: a 64-byte header can claim 100,000 × 100,000. */
	maxPixels: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxPixels: 40_000_000 };

export type Decoded = { ok: true; pixels: Pixels } | { ok: false; code: ProblemCode; message: string };

/** Decodes a PNG or JPEG with pngjs / jpeg-js, refusing what is not one, too large, or damaged. */
export function decodeImage(bytes: Buffer, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Decoded {
	const header = readImageHeader(bytes);
	if (!header) return { ok: false, code: "image_unreadable", message: "the file is not a PNG or JPEG image" };
	const pixels = header.width * header.height;
	if (header.width === 0 || header.height === 0) return { ok: false, code: "image_corrupt", message: `the image declares a size of ${header.width}×${header.height}` };
	if (pixels > limits.maxPixels) {
		return { ok: false, code: "image_too_large", message: `the image is ${header.width}×${header.height} (${pixels.toLocaleString("en-US")} pixels); the limit is ${limits.maxPixels.toLocaleString("en-US")}` };
	}
	try {
		if (header.kind === "png") {
			const png = PNG.sync.read(bytes);
			return { ok: true, pixels: { width: png.width, height: png.height, rgba: png.data } };
		}
		const img = jpeg.decode(bytes, {
			useTArray: true,
			formatAsRGBA: true,
			maxResolutionInMP: limits.maxPixels / 1_000_000,
			maxMemoryUsageInMB: Math.ceil((limits.maxPixels * 8) / 1_048_576) + 64,
		});
		return { ok: true, pixels: { width: img.width, height: img.height, rgba: img.data } };
	} catch (err) {
		const reason = err instanceof Error ? err.message : String(err);
		return { ok: false, code: "image_corrupt", message: `the ${header.kind.toUpperCase()} data cannot be decoded (${reason})` };
	}
}
