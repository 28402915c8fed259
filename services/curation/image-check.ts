import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from "./decode";
import type { DatasetFiles } from "./files";
import { readImageHeader, type ImageHeader } from "./image-header";
import type { Problems } from "./problems";

/**
 * Reads one image file's header and reports why it cannot be used: absent, not a PNG/JPEG, cut short, or larger
 * than the limit. Full decoding (which finds damage inside the data) happens once, when the image is embedded.
 */
export async function checkImageFile(files: DatasetFiles, path: string, problems: Problems, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<ImageHeader | undefined> {
	let bytes: Buffer;
	try {
		bytes = await files.read(path);
	} catch {
		problems.error("image_missing", `the image file ${path} does not exist or cannot be read`, { file: path });
		return undefined;
	}
	const header = readImageHeader(bytes);
	if (!header) return problems.error("image_unreadable", "the file is not a PNG or JPEG image", { file: path }), undefined;
	if (!header.complete) return problems.error("image_corrupt", `the ${header.kind.toUpperCase()} file is truncated (its end marker is missing)`, { file: path }), undefined;
	if (header.width === 0 || header.height === 0) return problems.error("image_corrupt", `the image declares a size of ${header.width}×${header.height}`, { file: path }), undefined;
	if (header.width * header.height > limits.maxPixels) {
		problems.error("image_too_large", `the image is ${header.width}×${header.height}; the limit is ${limits.maxPixels.toLocaleString("en-US")} pixels`, { file: path });
		return undefined;
	}
	return header;
}
