/**
 * Image facts read from the first and last bytes only, without decoding: the kind, the declared size, and whether
 * the file ends where a complete file ends. Validation uses them to check annotation sizes and to refuse huge or
 * truncated images before any decoder allocates memory for them.
 */
export interface ImageHeader {
	kind: "png" | "jpeg";
	width: number;
	height: number;
	/** False when the end marker (PNG IEND, JPEG EOI) is missing: the upload was cut short. */
	complete: boolean;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_IEND = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
/** Bytes after a JPEG's EOI that are still tolerated (some cameras pad their files). */
const JPEG_TRAILER_SLACK = 1024;

export function readImageHeader(bytes: Buffer): ImageHeader | undefined {
	if (bytes.length >= 24 && bytes.subarray(0, 8).equals(PNG_SIGNATURE) && bytes.toString("latin1", 12, 16) === "IHDR") {
		return {
			kind: "png",
			width: bytes.readUInt32BE(16),
			height: bytes.readUInt32BE(20),
			complete: bytes.subarray(bytes.length - PNG_IEND.length).equals(PNG_IEND),
		};
	}
	if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) return readJpegHeader(bytes);
	return undefined;
}

/** Walks the marker segments up to the first start-of-frame, which holds the size. */
function readJpegHeader(bytes: Buffer): ImageHeader | undefined {
	let i = 2;
	while (i + 3 < bytes.length) {
		if (bytes[i] !== 0xff) return undefined;
		const marker = bytes[i + 1]!;
		if (marker === 0xff) {
			i++;
			continue;
		}
		if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
			i += 2;
			continue;
		}
		const length = bytes.readUInt16BE(i + 2);
		const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
		if (isFrame) {
			if (i + 9 > bytes.length) return undefined;
			const tail = bytes.subarray(Math.max(0, bytes.length - JPEG_TRAILER_SLACK));
			return { kind: "jpeg", height: bytes.readUInt16BE(i + 5), width: bytes.readUInt16BE(i + 7), complete: tail.includes(Buffer.from([0xff, 0xd9])) };
		}
		i += 2 + length;
	}
	return undefined;
}
