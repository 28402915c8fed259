/**
 * Which actions the edges expose, and where: the HTTP path (its `:name` segments become the params of that name)
 * and, for the selected ones, the NATS services API endpoint (`savassan.v1.<nats tokens>`). An action absent here
 * is reachable from outside by no edge at all.
 *
 * HTTP: GET and DELETE take their other params from the query string, POST and PUT from the JSON body.
 */

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

export interface EdgeRoute {
	method: HttpMethod;
	/** uWebSockets.js pattern under /v1, e.g. `/v1/runs/:id`. */
	path: string;
	action: string;
	/** Status of a success (201 for what creates something). */
	status?: 200 | 201 | 202;
	/** Endpoint tokens of the NATS services API, e.g. ["runs", "get"] for `savassan.v1.runs.get`. */
	nats?: readonly string[];
}

const route = (method: HttpMethod, path: string, action: string, extra: Pick<EdgeRoute, "status" | "nats"> = {}): EdgeRoute => ({ method, path, action, ...extra });

export const EDGE_ROUTES: readonly EdgeRoute[] = [
	// Sign-in: public, this is how a caller gets a credential.
	route("POST", "/v1/auth/login", "authz.login"),
	route("POST", "/v1/auth/refresh", "authz.refresh"),
	route("POST", "/v1/auth/logout", "authz.logout"),
	route("POST", "/v1/auth/oidc/begin", "authz.oidc.begin"),
	route("POST", "/v1/auth/oidc/complete", "authz.oidc.complete"),

	route("GET", "/v1/runs", "execution.list", { nats: ["runs", "list"] }),
	route("POST", "/v1/runs", "execution.submit", { status: 201, nats: ["runs", "submit"] }),
	route("GET", "/v1/runs/:id", "execution.get", { nats: ["runs", "get"] }),
	route("GET", "/v1/runs/:id/logs", "execution.logs", { nats: ["runs", "logs"] }),
	route("POST", "/v1/runs/:id/cancel", "execution.cancel", { nats: ["runs", "cancel"] }),
	route("POST", "/v1/runs/:id/retry", "execution.retry", { nats: ["runs", "retry"] }),
	route("GET", "/v1/runs/:run_id/progress", "telemetry.progress", { nats: ["runs", "progress"] }),
	route("GET", "/v1/runs/:run_id/series", "telemetry.series", { nats: ["runs", "series"] }),

	route("GET", "/v1/alerts", "telemetry.alerts", { nats: ["alerts", "list"] }),
	route("GET", "/v1/alerts/rules", "telemetry.rules.list"),
	route("POST", "/v1/alerts/rules", "telemetry.rules.create", { status: 201 }),
	route("DELETE", "/v1/alerts/rules/:id", "telemetry.rules.delete"),

	route("GET", "/v1/intents", "intent.list", { nats: ["intents", "list"] }),
	route("POST", "/v1/intents", "intent.parse", { status: 201, nats: ["intents", "parse"] }),
	route("GET", "/v1/intents/:id", "intent.get", { nats: ["intents", "get"] }),
	route("GET", "/v1/intents/:id/plan", "intent.plan", { nats: ["intents", "plan"] }),
	route("POST", "/v1/intents/:id/submit", "intent.submit", { status: 201, nats: ["intents", "submit"] }),

	route("GET", "/v1/curation/jobs", "curation.list"),
	route("POST", "/v1/curation/jobs", "curation.start", { status: 201 }),
	route("GET", "/v1/curation/jobs/:id", "curation.get"),
	route("POST", "/v1/curation/jobs/:id/feedback", "curation.feedback"),

	route("GET", "/v1/assets/:workspace", "assets.list"),
	route("POST", "/v1/assets/:workspace", "assets.requestUpload", { status: 201 }),
	route("GET", "/v1/assets/:workspace/:uid", "assets.get"),
	route("POST", "/v1/assets/:workspace/:uid/complete", "assets.completeUpload"),
	route("POST", "/v1/assets/:workspace/:uid/download", "assets.requestDownload"),

	route("GET", "/v1/catalog/search", "catalog.search", { nats: ["catalog", "search"] }),
	route("GET", "/v1/catalog/suggest", "catalog.suggest"),
	route("POST", "/v1/catalog/datasets", "catalog.datasets.register", { status: 201 }),
	route("POST", "/v1/catalog/datasets/:dataset_id/versions", "catalog.datasets.versions.register", { status: 201 }),
	route("POST", "/v1/catalog/models", "catalog.models.register", { status: 201 }),
	route("POST", "/v1/catalog/models/:model_id/versions", "catalog.models.versions.register", { status: 201 }),
	route("POST", "/v1/catalog/models/:model_id/promote", "catalog.models.promote"),
	route("POST", "/v1/catalog/models/:model_id/rollback", "catalog.models.rollback"),
	route("POST", "/v1/catalog/endpoints", "catalog.endpoints.register", { status: 201 }),
	route("GET", "/v1/catalog/lineage/:id/upstream", "catalog.lineage.upstream"),
	route("GET", "/v1/catalog/lineage/:id/downstream", "catalog.lineage.downstream"),
	route("GET", "/v1/catalog/lineage/:id/impact", "catalog.lineage.impact"),
	route("GET", "/v1/catalog/lineage/:id/export", "catalog.lineage.export"),
	route("POST", "/v1/catalog/rebuild", "catalog.rebuild", { status: 202 }),
	route("GET", "/v1/catalog/check", "catalog.check"),
	route("GET", "/v1/catalog/:kind/:id", "catalog.get", { nats: ["catalog", "get"] }),

	route("GET", "/v1/deadletters", "deadletters.list"),
	route("GET", "/v1/deadletters/stats", "deadletters.stats"),
	route("GET", "/v1/deadletters/:seq", "deadletters.get"),
	route("POST", "/v1/deadletters/:seq/replay", "deadletters.replay"),

	route("GET", "/v1/me/api-keys", "authz.apiKeys.list"),
	route("POST", "/v1/me/api-keys", "authz.apiKeys.create", { status: 201 }),
	route("DELETE", "/v1/me/api-keys/:id", "authz.apiKeys.revoke"),
	route("PUT", "/v1/admin/users/:id", "authz.users.put"),
	route("DELETE", "/v1/admin/users/:id", "authz.users.remove"),
	route("PUT", "/v1/admin/groups/:id", "authz.groups.put"),
	route("DELETE", "/v1/admin/groups/:id", "authz.groups.remove"),
	route("PUT", "/v1/admin/departments/:id", "authz.departments.put"),
	route("DELETE", "/v1/admin/departments/:id", "authz.departments.remove"),
	route("PUT", "/v1/admin/workspaces/:id", "authz.workspaces.put"),
	route("POST", "/v1/admin/bindings", "authz.bindings.add", { status: 201 }),
	route("POST", "/v1/admin/bindings/remove", "authz.bindings.remove"),
	route("PUT", "/v1/admin/policies/:id", "authz.policies.save"),
	route("DELETE", "/v1/admin/policies/:id", "authz.policies.delete"),
	route("POST", "/v1/admin/policies/dry-run", "authz.policies.dryRun"),
	route("POST", "/v1/admin/decide", "authz.decide"),
	route("GET", "/v1/admin/audit", "authz.audit.query"),
	route("GET", "/v1/admin/audit/export", "authz.audit.export"),
];

/** The names of a route's path params, in order (`/v1/runs/:id/logs` → ["id"]). */
export function pathParamsOf(path: string): string[] {
	return path
		.split("/")
		.filter((segment) => segment.startsWith(":"))
		.map((segment) => segment.slice(1));
}
