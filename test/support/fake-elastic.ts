/**
 * A small stand-in for Elasticsearch over real HTTP, for request-level tests of the search adapter. It records
 * every request (method, path, query, parsed JSON or NDJSON body) and keeps just enough state to answer like the
 * real thing: indices with their mappings and documents (by id), and aliases. Searches get `searchResponse`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { RecordedRequest } from "./recorded-request";


interface FakeIndex {
	settings: unknown;
	mappings: unknown;
	docs: Map<string, unknown>;
}

export class FakeElastic {
	readonly requests: RecordedRequest[] = [];
	readonly indices = new Map<string, FakeIndex>();
	/** alias → concrete index */
	readonly aliases = new Map<string, string>();
	url = "";
	/** What every `_search` answers. */
	searchResponse: any = {
		took: 1,
		timed_out: false,
		_shards: { total: 1, successful: 1, skipped: 0, failed: 0 },
		hits: { total: { value: 0, relation: "eq" }, max_score: null, hits: [] },
		aggregations: {},
	};

	private constructor(private readonly server: Server) {}

	static async start(): Promise<FakeElastic> {
		const server = createServer();
		const fake = new FakeElastic(server);
		server.on("request", (req, res) => void fake.handle(req, res));
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
		return fake;
	}

	async stop(): Promise<void> {
		this.server.closeAllConnections();
		await new Promise<void>((resolve) => this.server.close(() => resolve()));
	}

	/** Requests whose method and path match. */
	find(method: string, path: RegExp): RecordedRequest[] {
		return this.requests.filter((r) => r.method === method && path.test(r.path));
	}

	private resolve(name: string): string {
		return this.aliases.get(name) ?? name;
	}

	private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const chunks: Buffer[] = [];
		for await (const c of req) chunks.push(c as Buffer);
		const raw = Buffer.concat(chunks).toString("utf8");
		const url = new URL(req.url ?? "/", "http://fake");
		const contentType = req.headers["content-type"];
		let body: any;
		if (raw) {
			body = url.pathname.endsWith("/_bulk")
				? raw.split("\n").filter(Boolean).map((l) => JSON.parse(l))
				: JSON.parse(raw);
		}
		const r: RecordedRequest = {
			method: req.method ?? "GET",
			path: decodeURIComponent(url.pathname),
			query: Object.fromEntries(url.searchParams),
			...(contentType ? { contentType } : {}),
			...(body !== undefined ? { body } : {}),
		};
		this.requests.push(r);
		const [status, answer] = this.route(r);
		res.writeHead(status, { "content-type": "application/json", "x-elastic-product": "Elasticsearch" });
		res.end(r.method === "HEAD" ? undefined : JSON.stringify(answer));
	}

	private route(r: RecordedRequest): [number, unknown] {
		const parts = r.path.split("/").filter(Boolean);
		const notFound = (what: string): [number, unknown] => [404, { error: { type: "index_not_found_exception", reason: what }, status: 404 }];
		if (parts[0] === "_alias" && parts[1]) {
			const names = parts[1].split(",");
			if (r.method === "HEAD") return [names.every((n) => this.aliases.has(n)) ? 200 : 404, undefined];
			const out: Record<string, { aliases: Record<string, object> }> = {};
			for (const n of names) {
				const index = this.aliases.get(n);
				if (index) (out[index] ??= { aliases: {} }).aliases[n] = {};
			}
			return [Object.keys(out).length ? 200 : 404, out];
		}
		if (parts[0] === "_aliases" && r.method === "POST") {
			for (const a of r.body.actions) {
				if (a.remove) this.aliases.delete(a.remove.alias);
				if (a.add) this.aliases.set(a.add.alias, a.add.index);
			}
			return [200, { acknowledged: true }];
		}
		if (parts[0] === "_bulk") return [200, this.bulk(r.body ?? [])];
		if (parts.length === 1 && r.method === "PUT") {
			const index = parts[0]!;
			if (this.indices.has(index)) return [400, { error: { type: "resource_already_exists_exception", reason: index }, status: 400 }];
			this.indices.set(index, { settings: r.body?.settings, mappings: r.body?.mappings, docs: new Map() });
			for (const alias of Object.keys(r.body?.aliases ?? {})) this.aliases.set(alias, index);
			return [200, { acknowledged: true, shards_acknowledged: true, index }];
		}
		if (parts.length === 1 && r.method === "DELETE") {
			for (const name of parts[0]!.split(",")) this.indices.delete(name);
			return [200, { acknowledged: true }];
		}
		const names = (parts[0] ?? "").split(",").map((n) => this.resolve(n));
		if (parts[1] === "_search") return [200, this.searchResponse];
		if (parts[1] === "_refresh") return [200, { _shards: { total: names.length, successful: names.length, failed: 0 } }];
		if (parts[1] === "_count") {
			const missing = names.find((n) => !this.indices.has(n));
			if (missing) return notFound(missing);
			return [200, { count: names.reduce((n, i) => n + this.indices.get(i)!.docs.size, 0) }];
		}
		return [400, { error: { type: "unsupported_by_fake", reason: `${r.method} ${r.path}` }, status: 400 }];
	}

	private bulk(lines: any[]): unknown {
		const items: unknown[] = [];
		for (let i = 0; i < lines.length; i++) {
			const [action, meta] = Object.entries(lines[i])[0] as [string, { _index: string; _id: string }];
			const index = this.indices.get(this.resolve(meta._index));
			if (action === "index") {
				const doc = lines[++i];
				if (!index) items.push({ index: { _index: meta._index, _id: meta._id, status: 404, error: { type: "index_not_found_exception", reason: meta._index } } });
				else {
					const created = !index.docs.has(meta._id);
					index.docs.set(meta._id, doc);
					items.push({ index: { _index: meta._index, _id: meta._id, status: created ? 201 : 200, result: created ? "created" : "updated" } });
				}
			} else if (action === "delete") {
				const found = index?.docs.delete(meta._id) ?? false;
				items.push({ delete: { _index: meta._index, _id: meta._id, status: found ? 200 : 404, result: found ? "deleted" : "not_found" } });
			}
		}
		return { took: 1, errors: items.some((it: any) => Object.values(it)[0] && (Object.values(it)[0] as any).error), items };
	}
}
