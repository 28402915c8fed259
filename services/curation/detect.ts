import type { DatasetFormat } from "./dataset";
import { isImageFile } from "./dataset";
import { cocoJsonPaths } from "./formats/coco";

/**
 * The format of a dataset from its file listing alone: VOC by Annotations/*.xml, YOLO by labels/*.txt next to
 * images/, COCO by an annotation JSON, ImageNet folders by images inside folders and nothing else. The reader then
 * checks the contents; the order here settles listings that look like two formats (VOC first: it is the most specific).
 */
export function detectFormat(paths: readonly string[]): DatasetFormat | undefined {
	if (paths.some((p) => /^Annotations\/.+\.xml$/i.test(p))) return "voc";
	if (paths.some((p) => p.startsWith("images/")) && (paths.some((p) => /^labels\/.+\.txt$/.test(p)) || paths.includes("data.yaml"))) return "yolo";
	if (cocoJsonPaths(paths).length) return "coco";
	if (paths.some((p) => isImageFile(p) && p.includes("/"))) return "imagenet";
	return undefined;
}
