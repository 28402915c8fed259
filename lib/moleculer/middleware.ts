import type { Middleware } from "moleculer";

/** Moleculer's Middleware type has no room for `name` next to its hooks; this keeps the cast in one place. */
export function defineMiddleware(m: { name: string } & Record<string, unknown>): Middleware {
	return m as unknown as Middleware;
}
