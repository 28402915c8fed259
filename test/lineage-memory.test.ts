import { MemoryLineage } from "../services/catalog/lineage/memory-lineage";
import { lineageContract } from "./support/lineage-contract";

lineageContract("memory (graphology)", async () => new MemoryLineage());
