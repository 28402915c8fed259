import type { Dataset, DatasetFormat } from "./dataset";
import type { DatasetFiles } from "./files";
import { WRITERS } from "./formats/registry";
import { Problems, type Problem } from "./problems";

/**
 * Writes a (read and validated) dataset in another format: the writer's annotation files plus every image copied
 * to where that format keeps it. Tolerances of a round trip: YOLO stores boxes to 1e-6 of the image side, VOC to
 * whole pixels (each edge within 0.5 px); class names and their order are always kept, category ids are renumbered
 * 0…n-1 by YOLO, VOC and ImageNet. Polygons survive only in COCO; whole-image classes only in COCO and ImageNet.
 */
export async function convertDataset(dataset: Dataset, source: DatasetFiles, to: DatasetFormat): Promise<{ files: Map<string, Buffer>; problems: Problem[] }> {
	const problems = new Problems();
	const written = WRITERS[to](dataset, problems);
	const files = new Map(written.files);
	const byId = new Map(dataset.images.map((i) => [i.id, i]));
	for (const [id, target] of written.images) files.set(target, await source.read(byId.get(id)!.path));
	const labelled = dataset.images.filter((i) => i.label !== undefined).length;
	if ((to === "yolo" || to === "voc") && labelled) {
		problems.warning("label_ambiguous", `${to.toUpperCase()} has no whole-image class; the classes of ${labelled} images are not kept`, { file: "." });
	}
	if (to !== "coco" && dataset.annotations.some((a) => a.segmentation)) {
		problems.warning("segmentation_dropped", `${to.toUpperCase()} output keeps boxes only; polygons are not written`, { file: "." });
	}
	return { files, problems: problems.list };
}
