import type { Location } from "./problems";

/**
 * The neutral dataset every format is read into and written from. Boxes are absolute pixels, [x, y, width, height]
 * from the top-left corner (COCO's convention); category ids are whatever the source used, names are the identity
 * that conversions keep. `origin` says where an entry was read from, so later checks can point at the line or id.
 */
export type DatasetFormat = "coco" | "yolo" | "voc" | "imagenet";

export type Box = [x: number, y: number, width: number, height: number];

export interface ImageRecord {
	id: number;
	/** Name relative to the format's image folder (COCO images/, YOLO images/, VOC JPEGImages/, the dataset root for ImageNet folders): what converters keep. */
	file: string;
	/** Where the image's bytes are in the dataset it was read from. */
	path: string;
	width: number;
	height: number;
	/** Image-level class (ImageNet folders); detection formats leave it unset. */
	label?: number;
	origin?: Location;
}

export interface Category {
	id: number;
	name: string;
}

export interface Annotation {
	id: number;
	image_id: number;
	category_id: number;
	bbox: Box;
	/** Polygons as flat [x1, y1, x2, y2, …] lists in absolute pixels, kept where the source had them. */
	segmentation?: number[][];
	origin?: Location;
}

export interface Dataset {
	format: DatasetFormat;
	images: ImageRecord[];
	categories: Category[];
	annotations: Annotation[];
}

export const isImageFile = (path: string) => /\.(png|jpe?g)$/i.test(path);

/** The path without its extension: the key that pairs a YOLO image with its label file, a VOC image with its XML. */
export const stem = (path: string) => path.replace(/\.[^./]*$/, "");

/** Box of a polygon, for sources that only give the outline. */
export function polygonBounds(points: number[]): Box {
	let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
	for (let i = 0; i + 1 < points.length; i += 2) {
		x0 = Math.min(x0, points[i]!), x1 = Math.max(x1, points[i]!);
		y0 = Math.min(y0, points[i + 1]!), y1 = Math.max(y1, points[i + 1]!);
	}
	return [x0, y0, x1 - x0, y1 - y0];
}
