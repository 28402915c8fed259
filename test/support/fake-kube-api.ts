/**
 * A small stand-in for the Kubernetes API over real HTTP: namespaced jobs, secrets and pods. It records every
 * request, answers create (409 AlreadyExists), get, list (label selector), patch (JSON patch, merge patch) and
 * delete (404 NotFound), and serves `?watch=true` as newline-delimited JSON events: those of its own changes and
 * those a test pushes with `emit`. `fail` makes chosen requests answer an error Status instead.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { RecordedRequest } from "./recorded-request";


type Resource = "jobs" | "secrets" | "pods";

interface Failure {
	match: (r: RecordedRequest) => boolean;
	status: number;
	reason: string;
	message: string;
	times: number;
}

interface Watcher {
	collection: string;
	res: ServerResponse;
}

const ROUTE = /^\/(?:api\/v1|apis\/batch\/v1)\/namespaces\/([^/]+)\/(jobs|secrets|pods)(?:\/([^/]+))?$/;
const KIND: Record<Resource, [string, string]> = {
	jobs: ["batch/v1", "Job"],
	secrets: ["v1", "Secret"],
	pods: ["v1", "Pod"],
};

export class FakeKubeApi {
	readonly requests: RecordedRequest[] = [];
	url = "";
	private readonly objects = new Map<string, any>();
	private readonly watchers = new Set<Watcher>();
	private readonly failures: Failure[] = [];
	private rv = 1000;

	private constructor(private readonly server: Server) {}

	static async start(): Promise<FakeKubeApi> {
		const server = createServer();
		const api = new FakeKubeApi(server);
		server.on("request", (req, res) => api.handle(req, res));
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
		return api;
	}

	/** Options for `KubeConfig.loadFromOptions` pointing at this server. */
	kubeConfigOptions(namespace = "default"): object {
		return {
			clusters: [{ name: "fake", server: this.url, skipTLSVerify: true }],
			users: [{ name: "tester", token: "test-token" }],
			contexts: [{ name: "fake", cluster: "fake", user: "tester", namespace }],
			currentContext: "fake",
		};
	}

	/** The next `times` requests matching `match` get this error Status. */
	fail(match: (r: RecordedRequest) => boolean, status: number, reason: string, message: string, times = 1): void {
		this.failures.push({ match, status, reason, message, times });
	}

	get(namespace: string, resource: Resource, name: string): any {
		return this.objects.get(`${namespace}/${resource}/${name}`);
	}

	all(namespace: string, resource: Resource): any[] {
		const prefix = `${namespace}/${resource}/`;
		return [...this.objects].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
	}

	/** Stores (or removes, for DELETED) an object without telling the watchers: a change made while nobody looked. */
	put(namespace: string, resource: Resource, type: "ADDED" | "MODIFIED" | "DELETED", obj: any): any {
		const key = `${namespace}/${resource}/${obj.metadata?.name}`;
		const stored = this.stamp(namespace, resource, obj, this.objects.get(key)?.metadata?.uid);
		if (type === "DELETED") this.objects.delete(key);
		else this.objects.set(key, stored);
		return stored;
	}

	/** Stores the change and sends it to the open watches of that collection. */
	emit(namespace: string, resource: Resource, type: "ADDED" | "MODIFIED" | "DELETED", obj: any): any {
		const stored = this.put(namespace, resource, type, obj);
		this.send(`${namespace}/${resource}`, { type, object: stored });
		return stored;
	}

	/** Sends a raw event (e.g. an ERROR with a 410 Status) to the open watches of a collection. */
	sendRaw(namespace: string, resource: Resource, event: unknown): void {
		this.send(`${namespace}/${resource}`, event);
	}

	/** Watches open now on a collection. */
	openWatches(namespace: string, resource: Resource): number {
		return [...this.watchers].filter((w) => w.collection === `${namespace}/${resource}`).length;
	}

	/** Ends every open watch stream, as an API server does at its timeout or on restart. */
	endWatches(): void {
		for (const w of this.watchers) w.res.end();
		this.watchers.clear();
	}

	requestsMatching(method: string, path: string | RegExp): RecordedRequest[] {
		return this.requests.filter((r) => r.method === method && (typeof path === "string" ? r.path === path : path.test(r.path)));
	}

	async stop(): Promise<void> {
		this.endWatches();
		this.server.closeAllConnections();
		await new Promise<void>((resolve) => this.server.close(() => resolve()));
	}

	// ---- HTTP ----

	private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const url = new URL(req.url ?? "/", "http://x");
		const chunks: Buffer[] = [];
		for await (const c of req) chunks.push(c as Buffer);
		const text = Buffer.concat(chunks).toString("utf8");
		const record: RecordedRequest = {
			method: req.method ?? "GET",
			path: url.pathname,
			query: Object.fromEntries(url.searchParams),
			contentType: req.headers["content-type"],
			body: text ? JSON.parse(text) : undefined,
		};
		this.requests.push(record);

		const failure = this.failures.find((f) => f.times > 0 && f.match(record));
		if (failure) {
			failure.times--;
			return this.status(res, failure.status, failure.reason, failure.message);
		}
		const m = ROUTE.exec(url.pathname);
		if (!m) return this.status(res, 404, "NotFound", `the server could not find the requested resource (${url.pathname})`);
		const [, namespace, resource, name] = m as unknown as [string, string, Resource, string | undefined];
		const collection = `${namespace}/${resource}`;
		const key = `${collection}/${name}`;

		if (record.method === "GET" && !name && record.query.watch === "true") return this.openWatch(collection, res);
		if (record.method === "GET" && !name) {
			const items = this.all(namespace, resource).filter((o) => matches(o, record.query.labelSelector));
			const [apiVersion, kind] = KIND[resource];
			return this.json(res, 200, { apiVersion, kind: `${kind}List`, metadata: { resourceVersion: String(this.rv) }, items });
		}
		if (record.method === "POST" && !name) {
			const body = record.body;
			const existing = this.objects.get(`${collection}/${body?.metadata?.name}`);
			if (existing) {
				return this.status(res, 409, "AlreadyExists", `${resource} "${body.metadata.name}" already exists`);
			}
			return this.json(res, 201, this.emit(namespace, resource, "ADDED", body));
		}
		const current = this.objects.get(key);
		if (!current) return this.status(res, 404, "NotFound", `${resource} "${name}" not found`);
		if (record.method === "GET") return this.json(res, 200, current);
		if (record.method === "DELETE") {
			this.emit(namespace, resource, "DELETED", current);
			return this.json(res, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success" });
		}
		if (record.method === "PATCH") {
			const patched = record.contentType?.startsWith("application/json-patch+json")
				? jsonPatch(current, record.body)
				: mergePatch(current, record.body);
			return this.json(res, 200, this.emit(namespace, resource, "MODIFIED", patched));
		}
		return this.status(res, 405, "MethodNotAllowed", `${record.method} not supported`);
	}

	private openWatch(collection: string, res: ServerResponse): void {
		res.writeHead(200, { "Content-Type": "application/json" });
		res.flushHeaders();
		const watcher = { collection, res };
		this.watchers.add(watcher);
		res.on("close", () => this.watchers.delete(watcher));
	}

	private send(collection: string, event: unknown): void {
		for (const w of this.watchers) if (w.collection === collection) w.res.write(`${JSON.stringify(event)}\n`);
	}

	private stamp(namespace: string, resource: Resource, obj: any, uid: string | undefined): any {
		const [apiVersion, kind] = KIND[resource];
		const copy = structuredClone(obj);
		copy.apiVersion ??= apiVersion;
		copy.kind ??= kind;
		copy.metadata = { ...copy.metadata, namespace };
		copy.metadata.uid ??= uid ?? randomUUID();
		copy.metadata.creationTimestamp ??= new Date().toISOString();
		copy.metadata.resourceVersion = String(++this.rv);
		return copy;
	}

	private json(res: ServerResponse, status: number, body: unknown): void {
		res.writeHead(status, { "Content-Type": "application/json" });
		res.end(JSON.stringify(body));
	}

	private status(res: ServerResponse, code: number, reason: string, message: string): void {
		this.json(res, code, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code });
	}
}

/** Equality-based selectors only (`a=b,c=d`), which is all the runtime uses. */
function matches(obj: any, selector: string | undefined): boolean {
	if (!selector) return true;
	return selector.split(",").every((term) => {
		const [k, v] = term.split("=");
		return obj.metadata?.labels?.[k] === v;
	});
}

/** add / replace / remove on JSON pointers. */
function jsonPatch(target: any, ops: Array<{ op: string; path: string; value?: unknown }>): any {
	const out = structuredClone(target);
	for (const { op, path, value } of ops) {
		const keys = path.split("/").slice(1).map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
		const last = keys.pop()!;
		let parent = out;
		for (const k of keys) parent = parent[k] ??= {};
		if (op === "remove") delete parent[last];
		else if (op === "add" || op === "replace") parent[last] = value;
		else throw new Error(`unsupported JSON patch op ${op}`);
	}
	return out;
}

function mergePatch(target: any, patch: any): any {
	if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
	const out = target && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
	for (const [k, v] of Object.entries(patch)) {
		if (v === null) delete out[k];
		else out[k] = mergePatch(out[k], v);
	}
	return out;
}
