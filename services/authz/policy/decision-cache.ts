/**
 * Decisions by key (principal version, policy epoch, action, resource, context). Keys carry the versions, so a
 * change makes older entries unreachable at once; `clear` on a global change only frees their memory.
 */
export class BoundedCache<V> {
	private readonly map = new Map<string, V>();

	constructor(private readonly max: number) {}

	get(key: string): V | undefined {
		return this.map.get(key);
	}

	set(key: string, value: V): void {
		// Insertion order is age: past the bound, the oldest entry goes.
		if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
		this.map.set(key, value);
	}

	clear(): void {
		this.map.clear();
	}

	get size(): number {
		return this.map.size;
	}
}
