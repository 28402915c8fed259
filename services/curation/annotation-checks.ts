import type { Annotation, Dataset } from "./dataset";
import type { Location, Problems } from "./problems";

/** Float noise from normalized formats (YOLO's 6 decimals) is not a box outside its image. */
export const EDGE_TOLERANCE_PX = 0.01;

/**
 * The rules every format shares once read into the neutral model: an annotation points at an existing image and
 * category, its box is four finite numbers with positive width and height, and it lies inside its image.
 * Returns the dataset without the annotations that break them.
 */
export function checkAnnotations(dataset: Dataset, problems: Problems): Dataset {
	const images = new Map(dataset.images.map((i) => [i.id, i]));
	const categories = new Set(dataset.categories.map((c) => c.id));
	const where = (a: Annotation): Location => a.origin ?? { file: "(annotations)", id: a.id };
	const annotations = dataset.annotations.filter((a) => {
		const image = images.get(a.image_id);
		if (!image) return problems.error("image_missing", `annotation ${a.id} refers to image ${a.image_id}, which does not exist`, where(a)), false;
		if (!categories.has(a.category_id)) return problems.error("category_missing", `annotation ${a.id} refers to category ${a.category_id}, which does not exist`, where(a)), false;
		const [x, y, w, h] = a.bbox;
		if (![x, y, w, h].every(Number.isFinite)) return problems.error("bbox_invalid", `the box of annotation ${a.id} is not four numbers`, where(a)), false;
		const shown = `[${a.bbox.map((v) => +v.toFixed(2)).join(", ")}]`;
		if (w <= 0 || h <= 0) return problems.error("bbox_not_positive", `the box ${shown} (x, y, width, height) has no positive width and height`, where(a)), false;
		const t = EDGE_TOLERANCE_PX;
		if (x < -t || y < -t || x + w > image.width + t || y + h > image.height + t) {
			problems.error("bbox_outside_image", `the box ${shown} (x, y, width, height) extends outside the ${image.width}×${image.height} image ${image.file}`, where(a));
			return false;
		}
		return true;
	});
	return { ...dataset, annotations };
}
