import type { ServiceBroker } from "moleculer";
import type { SchemaRegistry } from "../../lib/schemas";
import type { HttpRequest, HttpResponse, TemplatedApp } from "uWebSockets.js";
import { clientError, hasBody, parseJsonObject, readBody, refuseBeforeReading, type BodyHeaders } from "./api-body";
import { coerceParam, paramsFromQuery, queryShapeOf, type ParamKind } from "./api-query";
import { credentialOf, edgeCall, toErrorBody, traceIdOf, type Credential } from "./edge";
import { sendError, sendJson, sendText } from "./http";
import { EDGE_ROUTES, pathParamsOf, type EdgeRoute } from "./routes";

export interface ApiSettings {
	/** Largest JSON body accepted; a bigger one is 413 (before it is read when its size is declared). */
	maxBodyBytes: number;
}

interface ApiDeps {
	broker: ServiceBroker;
	/** The platform's schemas: query values are typed after each action's params schema. */
	schemas: SchemaRegistry;
	settings: ApiSettings;
}

/**
 * Mounts the HTTP JSON API (`/v1/...`): every route of EDGE_ROUTES, forwarded as an edge call (the authz middleware
 * on the serving node authenticates and decides), every failure as the one error body with the trace id, which is
 * also in the `x-trace-id` header of every answer. A known path asked with another method is 405 with `allow`;
 * unknown paths fall through to the gateway's 404.
 */
export function mountApi(app: TemplatedApp, deps: ApiDeps): void {
	const byPath = new Map<string, EdgeRoute[]>();
	for (const route of EDGE_ROUTES) byPath.set(route.path, [...(byPath.get(route.path) ?? []), route]);
	for (const [path, routes] of byPath) {
		for (const route of routes) {
			// Read once: the action's param types and the path's param names.
			const mounted: MountedRoute = { ...route, shape: queryShapeOf(deps.schemas, route.action), names: pathParamsOf(path) };
			const register = { GET: app.get, POST: app.post, PUT: app.put, DELETE: app.del }[route.method].bind(app);
			register(path, (res, req) => serve(res, req, mounted, deps));
		}
		// uWS prefers a method's handler to `any` on the same pattern, and static segments to params: this answers
		// only what no route of this path takes.
		const allow = routes.map((r) => r.method).join(", ");
		app.any(path, (res, req) => {
			const traceId = traceIdOf(req.getHeader("x-trace-id"));
			const refusal = clientError(405, "METHOD_NOT_ALLOWED", `${req.getCaseSensitiveMethod()} is not allowed on ${path}; use ${allow}`);
			sendError(res, toErrorBody(refusal, traceId), hasBody(bodyHeadersOf(req)), { "x-trace-id": traceId, allow });
		});
	}
}

interface MountedRoute extends EdgeRoute {
	shape: ReadonlyMap<string, ParamKind>;
	names: string[];
}

/** Everything a call needs from the request, read before the handler returns (uWS frees `req` then). */
interface ApiRequest {
	traceId: string;
	credential?: Credential;
	source: string;
	pathValues: string[];
	query: string;
	body: BodyHeaders;
}

const bodyHeadersOf = (req: HttpRequest): BodyHeaders => ({
	contentType: req.getHeader("content-type"),
	contentLength: req.getHeader("content-length"),
	transferEncoding: req.getHeader("transfer-encoding"),
});

function readRequest(res: HttpResponse, req: HttpRequest, pathParamCount: number): ApiRequest {
	const credential = credentialOf((name) => req.getHeader(name));
	return {
		traceId: traceIdOf(req.getHeader("x-trace-id")),
		...(credential ? { credential } : {}),
		source: `http ${Buffer.from(res.getRemoteAddressAsText()).toString()}`,
		pathValues: Array.from({ length: pathParamCount }, (_, i) => req.getParameter(i) ?? ""),
		query: req.getQuery() ?? "",
		body: bodyHeadersOf(req),
	};
}

function serve(res: HttpResponse, req: HttpRequest, route: MountedRoute, { broker, settings }: ApiDeps): void {
	const { names, shape } = route;
	const request = readRequest(res, req, names.length);
	const headers = { "x-trace-id": request.traceId };
	let aborted = false;
	res.onAborted(() => {
		aborted = true;
	});
	const fail = (err: unknown, closeConnection = false) => {
		if (aborted) return;
		const body = toErrorBody(err, request.traceId);
		if (body.status >= 500) broker.logger.error(`HTTP ${route.method} ${route.path} (${route.action}) failed, trace ${request.traceId}:`, err);
		sendError(res, body, closeConnection, headers);
	};

	let params: Promise<Record<string, unknown>>;
	// Set when a body is cut off mid-way: the rest of it is still coming, so the connection goes with the answer.
	let cutOff = false;
	try {
		const fromPath = pathParams(names, request.pathValues, shape);
		if (route.method === "GET" || route.method === "DELETE") {
			params = Promise.resolve(withPathParams(paramsFromQuery(request.query, shape), fromPath));
		} else {
			const refusal = refuseBeforeReading(request.body, settings.maxBodyBytes);
			// The body is left unread: closing stops the client from sending it.
			if (refusal) return fail(refusal, true);
			const body = hasBody(request.body) ? readBody(res, settings.maxBodyBytes) : Promise.resolve(Buffer.alloc(0));
			params = body.then(
				(bytes) => withPathParams(parseJsonObject(bytes), fromPath),
				(tooLarge: unknown) => {
					cutOff = true;
					throw tooLarge;
				},
			);
		}
	} catch (err) {
		return fail(err);
	}
	params
		.then((p) => {
			const { credential, source, traceId } = request;
			return edgeCall<unknown>(broker, { action: route.action, params: p, ...(credential ? { credential } : {}), source, traceId });
		})
		.then(
			(result) => {
				if (aborted) return;
				const status = route.status ?? 200;
				if (isJsonLines(result)) sendText(res, status, "application/x-ndjson", result.data, headers);
				else sendJson(res, status, result ?? null, false, headers);
			},
			(err: unknown) => fail(err, cutOff),
		);
}

/** The path's `:name` segments, decoded and typed like query values. */
function pathParams(names: string[], values: string[], shape: ReadonlyMap<string, ParamKind>): Record<string, unknown> {
	const params: Record<string, unknown> = {};
	names.forEach((name, i) => {
		let value: string;
		try {
			value = decodeURIComponent(values[i]!);
		} catch {
			throw clientError(400, "INVALID_PATH", `the path segment for '${name}' is not valid percent-encoding`, name);
		}
		const kind = shape.get(name);
		params[name] = kind && typeof kind === "string" ? coerceParam(value, kind) : value;
	});
	return params;
}

/** Merges the path's params over the body's or query's; a different value for the same name is refused by name. */
function withPathParams(params: Record<string, unknown>, fromPath: Record<string, unknown>): Record<string, unknown> {
	for (const [name, value] of Object.entries(fromPath)) {
		if (name in params && params[name] !== value) {
			throw clientError(400, "PARAM_CONFLICT", `'${name}' is ${JSON.stringify(params[name])} but the path says ${JSON.stringify(value)}`, name);
		}
	}
	return { ...params, ...fromPath };
}

/** An action's answer that is a JSON-lines document (`{ format: "jsonl", data }`, e.g. authz.audit.export). */
function isJsonLines(result: unknown): result is { format: "jsonl"; data: string } {
	const r = result as { format?: unknown; data?: unknown } | null | undefined;
	return r?.format === "jsonl" && typeof r.data === "string";
}
