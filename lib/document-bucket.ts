import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator } from "@nats-io/transport-node";
import { compareAndSet, createOrGet, openBucket, valueOf } from "./kv";

/** What a document bucket holds: JSON documents with an id (the key) and a creation time (the list order). */
export interface StoredDocument {
	id: string;
	/** ISO 8601 UTC: one length, so text order is time order. */
	created_at: string;
}

export interface PageQuery {
	limit: number;
	/** Opaque: the `next` of the previous page. */
	cursor?: string;
}

export interface Page<T> {
	items: T[];
	total: number;
	next?: string;
}

/** A document's place in the newest-first order, ties broken by id so the order is total. */
const position = (d: StoredDocument) => `${d.created_at}|${d.id}`;

/**
 * A JetStream KV bucket as a document collection: creates that never overwrite, compare-and-set updates, and an
 * in-memory index kept current by a watch (so every instance sees every instance's writes) for lists and scans.
 * Single reads go to the bucket, not the index: a read right after a write sees it.
 */
export class DocumentBucket<T extends StoredDocument> {
	private readonly index = new Map<string, T>();
	private watcher: QueuedIterator<unknown> | undefined;

	private constructor(readonly kv: KV) {}

	/** Opens (or creates) the bucket; resolves once the index holds every stored document. */
	static async open<T extends StoredDocument>(
		conn: JetStreamClient | NatsConnection,
		name: string,
		opts: { replicas: number; history: number; description: string },
	): Promise<DocumentBucket<T>> {
		const bucket = new DocumentBucket<T>(await openBucket(conn, name, opts));
		await bucket.follow();
		return bucket;
	}

	private async follow(): Promise<void> {
		const empty = (await this.kv.status()).values === 0;
		const watcher = await this.kv.watch();
		this.watcher = watcher;
		await new Promise<void>((loaded) => {
			if (empty) loaded();
			void (async () => {
				for await (const e of watcher) {
					if (e.operation === "PUT") this.index.set(e.key, e.json<T>());
					else this.index.delete(e.key);
					// delta counts what the watch has still to deliver of the bucket's current content.
					if (e.delta === 0) loaded();
				}
			})();
		});
	}

	async get(id: string): Promise<T | undefined> {
		return valueOf<T>(await this.kv.get(id));
	}

	/** Stores a new document; when the id exists already, returns the stored one instead. */
	async create(doc: T): Promise<{ doc: T; created: boolean }> {
		const stored = await createOrGet(this.kv, doc.id, JSON.stringify(doc));
		if (!stored.created) return { doc: stored.entry.json<T>(), created: false };
		this.index.set(doc.id, doc);
		return { doc, created: true };
	}

	/**
	 * Applies `change` to the stored document (undefined when there is none) and writes the result if the document
	 * did not move meanwhile, else reads it again and re-applies: `change` must be pure. Undefined writes nothing.
	 */
	async update(id: string, change: (current: T | undefined) => T | undefined): Promise<{ current: T | undefined; written?: T }> {
		const result = await compareAndSet<T>(this.kv, id, change);
		if (result.written) this.index.set(id, result.written);
		return result;
	}

	/** Every indexed document (scans: the watchdog, resumption at start). */
	values(): T[] {
		return [...this.index.values()];
	}

	/** Newest first among those `matches` accepts; the cursor is a position, so new documents do not shift pages. */
	page(matches: (doc: T) => boolean, q: PageQuery): Page<T> {
		const after = q.cursor ? Buffer.from(q.cursor, "base64url").toString() : undefined;
		const matching = this.values()
			.filter(matches)
			.sort((a, b) => (position(a) < position(b) ? 1 : position(a) > position(b) ? -1 : 0));
		const from = after === undefined ? 0 : matching.findIndex((d) => position(d) < after);
		const start = from < 0 ? matching.length : from;
		const items = matching.slice(start, start + q.limit);
		const last = items.at(-1);
		return {
			items,
			total: matching.length,
			...(last && start + items.length < matching.length ? { next: Buffer.from(position(last)).toString("base64url") } : {}),
		};
	}

	close(): void {
		this.watcher?.stop();
	}
}
