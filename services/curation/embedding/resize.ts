import type { Pixels } from "../decode";

/** Source index range [from, to) covered by target cell `i` of `n`: at least one pixel, so upscaling works too. */
function span(i: number, n: number, size: number): [number, number] {
	const from = Math.floor((i * size) / n);
	return [from, Math.max(from + 1, Math.floor(((i + 1) * size) / n))];
}

/**
 * Area-average downscale to `width` × `height` RGB (0–255 floats, row by row). Averaging rather than sampling is
 * what makes the hash stable under re-encoding noise. Alpha is ignored: the colour channels are what a model sees.
 */
export function areaAverageRgb(src: Pixels, width: number, height: number): Float32Array {
	const out = new Float32Array(width * height * 3);
	const cols = Array.from({ length: width }, (_, x) => span(x, width, src.width));
	for (let ty = 0; ty < height; ty++) {
		const [y0, y1] = span(ty, height, src.height);
		for (let tx = 0; tx < width; tx++) {
			const [x0, x1] = cols[tx]!;
			let r = 0, g = 0, b = 0;
			for (let y = y0; y < y1; y++) {
				let p = (y * src.width + x0) * 4;
				for (let x = x0; x < x1; x++, p += 4) r += src.rgba[p]!, g += src.rgba[p + 1]!, b += src.rgba[p + 2]!;
			}
			const n = (y1 - y0) * (x1 - x0);
			const o = (ty * width + tx) * 3;
			out[o] = r / n, out[o + 1] = g / n, out[o + 2] = b / n;
		}
	}
	return out;
}

/** ITU-R BT.601 luma of an RGB buffer. */
export function luma(rgb: Float32Array): Float32Array {
	const out = new Float32Array(rgb.length / 3);
	for (let i = 0; i < out.length; i++) out[i] = 0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!;
	return out;
}
