import type { DatasetFormat } from "../dataset";
import type { FormatReader, FormatWriter } from "./context";
import { readCoco, writeCoco } from "./coco";
import { readImagenet, writeImagenet } from "./imagenet";
import { readVoc, writeVoc } from "./voc";
import { readYolo, writeYolo } from "./yolo";

export const READERS: Record<DatasetFormat, FormatReader> = { coco: readCoco, yolo: readYolo, voc: readVoc, imagenet: readImagenet };
export const WRITERS: Record<DatasetFormat, FormatWriter> = { coco: writeCoco, yolo: writeYolo, voc: writeVoc, imagenet: writeImagenet };
