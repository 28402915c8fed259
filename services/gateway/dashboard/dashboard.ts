import { readFileSync } from "node:fs";
import { extname, join } from "node:path";
import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import { PROJECT_ROOT } from "../../../lib/paths";

/**
 * The dashboard: a static page (plain HTML, CSS and ES modules) that signs in, then talks to the HTTP API and the
 * live WebSocket like any other client. Its files live beside this one in the source tree (tsc copies only .ts),
 * are read once at mount time and served from memory.
 */

const DASHBOARD_DIR = join(PROJECT_ROOT, "services", "gateway", "dashboard");

/** Every asset the page loads; nothing else under /dashboard/ is served. */
const ASSETS = ["style.css", "app.js", "api.js", "live.js", "chart.js", "logs.js", "views.js"] as const;

const CONTENT_TYPES: Record<string, string> = {
	".html": "text/html; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".js": "text/javascript; charset=utf-8",
};

/**
 * Scripts and styles only from this origin (no inline code, so an injected string can never run), network only
 * back to this origin ('self' also covers ws:/wss: on the same host and port), no framing, no plugins.
 */
export const DASHBOARD_CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"img-src 'self'",
	"connect-src 'self'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
].join("; ");

interface Asset {
	body: Buffer;
	contentType: string;
}

function load(file: string): Asset {
	const contentType = CONTENT_TYPES[extname(file)];
	if (!contentType) throw new Error(`dashboard: no content type for ${file}`);
	try {
		return { body: readFileSync(join(DASHBOARD_DIR, file)), contentType };
	} catch (err) {
		throw new Error(`dashboard: cannot read ${join(DASHBOARD_DIR, file)} (${(err as Error).message}); the page's files must sit beside dashboard.ts in the source tree.`);
	}
}

function send(res: HttpResponse, asset: Asset): void {
	res.cork(() => {
		res
			.writeStatus("200 OK")
			.writeHeader("content-type", asset.contentType)
			// Revalidated on every load: a new deployment's page is picked up at once.
			.writeHeader("cache-control", "no-cache")
			.writeHeader("content-security-policy", DASHBOARD_CSP)
			.writeHeader("x-content-type-options", "nosniff")
			.writeHeader("referrer-policy", "no-referrer")
			.end(asset.body);
	});
}

/** Serves the dashboard page at `/` and `/dashboard`, its assets under `/dashboard/`. */
export function mountDashboard(app: TemplatedApp): void {
	const page = load("index.html");
	app.get("/", (res) => send(res, page));
	app.get("/dashboard", (res) => send(res, page));
	for (const file of ASSETS) {
		const asset = load(file);
		app.get(`/dashboard/${file}`, (res) => send(res, asset));
	}
}
