import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from "./decode";
import type { Dataset } from "./dataset";
import { embedImage, type ImageEmbedding } from "./embedding/embed";
import type { DatasetFiles } from "./files";
import { Problems, type Problem } from "./problems";

export interface Progress {
	processed: number;
	total: number;
}

export interface EmbeddedDataset {
	/** By image id; images that could not be decoded are absent and listed in `problems`. */
	embeddings: Map<number, ImageEmbedding>;
	problems: Problem[];
}

/**
 * Embeds every image of the dataset, one at a time, reporting progress every `every` images (and at the end) so the
 * service can publish it. Yields to the event loop between images: a long dataset must not starve the broker.
 */
export async function embedDataset(
	dataset: Dataset,
	files: DatasetFiles,
	options: { limits?: ImageLimits; every?: number; onProgress?: (p: Progress) => void | Promise<void> } = {},
): Promise<EmbeddedDataset> {
	const problems = new Problems();
	const embeddings = new Map<number, ImageEmbedding>();
	const total = dataset.images.length;
	const every = options.every ?? 100;
	for (const [n, image] of dataset.images.entries()) {
		const result = embedImage(await files.read(image.path), options.limits ?? DEFAULT_IMAGE_LIMITS);
		if (result.ok) embeddings.set(image.id, result.embedding);
		else problems.error(result.code, result.message, { file: image.path });
		if ((n + 1) % every === 0 || n + 1 === total) await options.onProgress?.({ processed: n + 1, total });
		if ((n + 1) % 64 === 0) await new Promise((r) => setImmediate(r));
	}
	return { embeddings, problems: problems.list };
}
