import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import { compareAndSet, createOrGet, openBucket, valueOf } from "../../lib/kv";
import type { Run, RunStatus } from "./run";
import type { Step } from "./run-state";

/**
 * Run documents in a JetStream KV bucket (the embedded document store), one key per run. Every change is a
 * compare-and-set on the key's revision, so two controllers never both apply a transition; an in-memory index
 * kept current by a watch on the bucket serves list queries and the watchdog.
 */

export const RUNS_BUCKET = "runs";

export interface RunQuery {
	workspace?: string;
	status?: RunStatus[];
	limit: number;
	/** Opaque: the `next` of the previous page. */
	cursor?: string;
}

export interface RunPage {
	items: Run[];
	total: number;
	next?: string;
}

export class RunConflictError extends Error {
	override name = "RunConflictError";
}


export class RunStore {
	private readonly index = new Map<string, Run>();
	private watcher: QueuedIterator<unknown> | undefined;

	private constructor(private readonly kv: KV) {}

	static async open(js: JetStreamClient, replicas: number): Promise<RunStore> {
		const kv = await openBucket(js, RUNS_BUCKET, { history: 5, replicas, description: "Run documents (execution)" });
		const store = new RunStore(kv);
		await store.follow();
		return store;
	}

	/** Loads every run, then keeps the index current; resolves once the initial values are in. */
	private async follow(): Promise<void> {
		const empty = (await this.kv.status()).values === 0;
		const watcher = await this.kv.watch();
		this.watcher = watcher;
		await new Promise<void>((loaded) => {
			if (empty) loaded();
			void (async () => {
				for await (const e of watcher) {
					if (e.operation === "PUT") this.index.set(e.key, e.json<Run>());
					else this.index.delete(e.key);
					// delta counts what the watch has still to deliver of the bucket's current content.
					if (e.delta === 0) loaded();
				}
			})();
		});
	}

	/** The stored document, read from the bucket (not the index): reads after writes see them. */
	async get(id: string): Promise<Run | undefined> {
		return valueOf<Run>(await this.kv.get(id));
	}

	/** Stores a new run; when the id exists already, returns the stored one instead. */
	async create(run: Run): Promise<{ run: Run; created: boolean }> {
		const stored = await createOrGet(this.kv, run.id, JSON.stringify(run));
		if (!stored.created) return { run: stored.entry.json<Run>(), created: false };
		this.index.set(run.id, run);
		return { run, created: true };
	}

	/**
	 * Applies `change` to the current document and stores the result if the document did not change meanwhile;
	 * otherwise reads it again and re-applies. `change` must be pure: it can run more than once.
	 */
	async update(id: string, change: (run: Run) => Step): Promise<Step> {
		let step: Step | undefined;
		const { written } = await compareAndSet<Run>(this.kv, id, (current) => {
			if (!current) throw new RunConflictError(`run ${id} does not exist`);
			step = change(current);
			return step.run === current ? undefined : step.run;
		});
		if (written) this.index.set(id, written);
		return step!;
	}

	/** Newest first, from the index. */
	list(q: RunQuery): RunPage {
		const offset = q.cursor ? Number(Buffer.from(q.cursor, "base64url").toString()) || 0 : 0;
		const matching = [...this.index.values()]
			.filter((r) => (!q.workspace || r.workspace === q.workspace) && (!q.status?.length || q.status.includes(r.status)))
			.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1));
		const items = matching.slice(offset, offset + q.limit);
		const end = offset + items.length;
		return {
			items,
			total: matching.length,
			next: end < matching.length ? Buffer.from(String(end)).toString("base64url") : undefined,
		};
	}

	/** Runs in the given states, from the index (the watchdog's view). */
	inStatus(...statuses: RunStatus[]): Run[] {
		return [...this.index.values()].filter((r) => statuses.includes(r.status));
	}

	/** Every run with a transition whose event is not stored yet. */
	withUnpublished(): Run[] {
		return [...this.index.values()].filter((r) => r.history.some((t) => !t.published));
	}

	close(): void {
		this.watcher?.stop();
	}
}
