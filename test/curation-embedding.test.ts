import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeImage } from "../services/curation/decode";
import { DEFAULT_NEAR_DISTANCE, findDuplicates } from "../services/curation/duplicates";
import { embedImage, type ImageEmbedding } from "../services/curation/embedding/embed";
import { hamming, phashHex } from "../services/curation/embedding/phash";
import { kCenterGreedy } from "../services/curation/k-center";
import { findOutliers } from "../services/curation/outliers";
import { brighten, drawImage, encodeJpeg, encodePng, type Raster } from "./support/datasets";

function embed(bytes: Buffer): ImageEmbedding {
	const r = embedImage(bytes);
	assert.ok(r.ok, r.ok ? "" : r.message);
	return r.embedding;
}

const picture = (seed: number, w = 64, h = 48): Raster => drawImage(w, h, seed, [{ cls: seed % 3, box: [8, 8, 20, 16] }]);
const distinct = Array.from({ length: 24 }, (_, i) => embed(encodePng(picture(100 + i))));

describe("perceptual hash", () => {
	it("finds a re-encoded, a brightened and a noisy copy of an image", () => {
		const original = picture(7);
		const base = embed(encodePng(original));
		const copies = { jpeg70: encodeJpeg(original, 70), brighter: encodePng(brighten(original, 30)), noisy: encodePng(drawImage(64, 48, 7, [{ cls: 1, box: [8, 8, 20, 16] }], 12)) };
		for (const [name, bytes] of Object.entries(copies)) {
			const d = hamming(base.phash, embed(bytes).phash);
			assert.ok(d <= DEFAULT_NEAR_DISTANCE, `${name}: distance ${d} (${phashHex(base.phash)})`);
		}
	});

	it("averages noise away on a larger image (area downscale, not sampling)", () => {
		const big = (noise: number) => embed(encodePng(drawImage(256, 192, 7, [{ cls: 1, box: [40, 40, 90, 60] }], noise)));
		const d = hamming(big(0).phash, big(160).phash);
		assert.ok(d <= 3, `distance ${d}`);
	});

	it("does not pair different images", () => {
		let closest = 64;
		for (let i = 0; i < distinct.length; i++) for (let j = i + 1; j < distinct.length; j++) closest = Math.min(closest, hamming(distinct[i]!.phash, distinct[j]!.phash));
		assert.ok(closest > DEFAULT_NEAR_DISTANCE * 2, `closest pair of different images is ${closest} bits apart`);
	});

	it("groups exact and near duplicates under the first image, and nothing else", () => {
		const original = encodePng(picture(7));
		const items = [...distinct.slice(0, 5), embed(original), embed(original), embed(encodeJpeg(picture(7), 75)), ...distinct.slice(5, 10)];
		const found = findDuplicates(items);
		assert.deepEqual(found.map(({ index, of, kind }) => ({ index, of, kind })), [
			{ index: 6, of: 5, kind: "exact" },
			{ index: 7, of: 5, kind: "near" },
		]);
		assert.deepEqual(findDuplicates(distinct), []);
	});
});

describe("decoding limits and damage", () => {
	it("refuses huge declared sizes, truncated data and non-images with a problem, never a throw", () => {
		const png = encodePng(picture(3));
		const huge = Buffer.from(png);
		huge.writeUInt32BE(100_000, 16);
		huge.writeUInt32BE(100_000, 20);
		const damaged = Buffer.concat([png.subarray(0, 60), Buffer.alloc(20, 0x55), png.subarray(png.length - 12)]);
		const jpeg = encodeJpeg(picture(3));
		const results = {
			huge: decodeImage(huge),
			damagedPng: decodeImage(damaged),
			cutJpeg: decodeImage(jpeg.subarray(0, jpeg.length >> 1)),
			text: decodeImage(Buffer.from("hello")),
			overLimit: decodeImage(png, { maxPixels: 1000 }),
		};
		assert.deepEqual(Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.ok ? "ok" : r.code])), {
			huge: "image_too_large",
			damagedPng: "image_corrupt",
			cutJpeg: "image_corrupt",
			text: "image_unreadable",
			overLimit: "image_too_large",
		});
		const ok = decodeImage(jpeg);
		assert.ok(ok.ok && ok.pixels.width === 64 && ok.pixels.height === 48);
	});
});

describe("outliers", () => {
	it("flags an image far from the rest, an odd size and an odd brightness, and leaves the others alone", () => {
		const plain = (v: number) => encodePng({ width: 64, height: 48, rgba: Buffer.alloc(64 * 48 * 4, v) });
		const items = [...distinct, embed(plain(255)), embed(encodePng(picture(200, 400, 20))), embed(plain(0))];
		const found = findOutliers(items);
		assert.deepEqual(found.map((o) => o.index), [24, 25, 26], JSON.stringify(found));
		assert.ok(found[0]!.reasons.some((r) => r.startsWith("unusually bright")), found[0]!.reasons.join("; "));
		assert.ok(found[1]!.reasons.some((r) => r.startsWith("unusual size 400×20")), found[1]!.reasons.join("; "));
		assert.ok(found[2]!.reasons.some((r) => r.startsWith("unusually dark")), found[2]!.reasons.join("; "));
		assert.deepEqual(findOutliers(distinct), []);
	});
});

describe("k-center greedy", () => {
	/** Three tight clusters of 2-D points around (0,0), (10,0) and (0,10). */
	const centres = [[0, 0], [10, 0], [0, 10]];
	const points = Array.from({ length: 30 }, (_, i) => Float32Array.from([centres[i % 3]![0]! + (i % 5) * 0.1, centres[i % 3]![1]! + (i % 7) * 0.1]));
	const cluster = (i: number) => i % 3;

	it("picks one point per cluster before a second from any", () => {
		const picks = kCenterGreedy(points, 3);
		assert.deepEqual(picks.map(cluster).sort(), [0, 1, 2]);
		const six = kCenterGreedy(points, 6);
		assert.deepEqual(six.slice(0, 3), picks);
	});

	it("is deterministic and starts where told", () => {
		assert.deepEqual(kCenterGreedy(points, 5), kCenterGreedy(points, 5));
		assert.equal(kCenterGreedy(points, 3, 4)[0], 4);
		assert.throws(() => kCenterGreedy(points, 3, 30), /not one of the 30 vectors/);
	});

	it("stops when only copies of picked points remain", () => {
		const same = Array.from({ length: 5 }, () => Float32Array.from([1, 1]));
		assert.deepEqual(kCenterGreedy(same, 3), [0]);
	});
});
