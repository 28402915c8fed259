import { MemorySearch } from "../services/catalog/search/memory-search";
import { searchContract } from "./support/search-contract";

searchContract("memory (minisearch)", async () => new MemorySearch());
