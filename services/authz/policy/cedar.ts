/** The Cedar engine (WebAssembly, CommonJS build) and the names this platform's model uses in it. */
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";

export { cedar };
export type { CedarValueJson, DetailedError, EntityJson, PolicySet } from "@cedar-policy/cedar-wasm/nodejs";

export const NAMESPACE = "Savassan";
export const entityType = (t: string) => `${NAMESPACE}::${t}`;
export const ACTION_TYPE = entityType("Action");
