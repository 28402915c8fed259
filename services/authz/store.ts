/**
 * The one storage port of the authz context: records by key. The in-memory implementation is the embedded
 * default; a JetStream KV bucket per record kind implements the same interface.
 */
export interface RecordStore<T> {
	get(key: string): Promise<T | undefined>;
	put(key: string, value: T): Promise<void>;
	/** True when something was deleted. */
	delete(key: string): Promise<boolean>;
	/** Every record whose key starts with `prefix` (all when omitted). */
	list(prefix?: string): Promise<T[]>;
}

export class MemoryStore<T> implements RecordStore<T> {
	private readonly map = new Map<string, T>();

	async get(key: string): Promise<T | undefined> {
		return this.map.get(key);
	}
	async put(key: string, value: T): Promise<void> {
		this.map.set(key, value);
	}
	async delete(key: string): Promise<boolean> {
		return this.map.delete(key);
	}
	async list(prefix = ""): Promise<T[]> {
		const out: T[] = [];
		for (const [k, v] of this.map) if (k.startsWith(prefix)) out.push(v);
		return out;
	}
}

/** Milliseconds since the epoch; injected so tests can move time. */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now();
