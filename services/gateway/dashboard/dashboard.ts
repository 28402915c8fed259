import type { TemplatedApp } from "uWebSockets.js";

/** Serves the dashboard page and its assets. */
export function mountDashboard(_app: TemplatedApp): void {
	throw new Error("dashboard: being built");
}
