import { createHash, randomUUID } from "node:crypto";

const ID_HEX = 20;

/** `<prefix>-` and 20 hex digits of the sha256 of `parts`: the same parts always give the same id. */
export function hashedId(prefix: string, ...parts: string[]): string {
	return `${prefix}-${createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, ID_HEX)}`;
}

/**
 * The id of what a request creates: derived from the workspace and request id when there is one, so a retried
 * request finds what the first one created; random otherwise.
 */
export function requestScopedId(prefix: string, workspace: string, requestId: string | undefined): string {
	return requestId ? hashedId(prefix, workspace, requestId) : `${prefix}-${randomUUID().replace(/-/g, "").slice(0, ID_HEX)}`;
}
