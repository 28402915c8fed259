/**
 * Runs tasks one at a time per key and concurrently across keys, each key's tasks in the order they were queued.
 * The catalog handles several runs' events at once but one run's events in delivery order: its stored copy and
 * its search document then always move to the newest event, never back.
 */
export class KeyedQueue {
	private readonly tails = new Map<string, Promise<unknown>>();

	/** Queues `task` behind the key's earlier tasks (queue synchronously, in the order the work arrives). */
	run<T>(key: string, task: () => Promise<T>): Promise<T> {
		const previous = this.tails.get(key) ?? Promise.resolve();
		const result = previous.then(task, task);
		const tail = result.catch(() => undefined);
		this.tails.set(key, tail);
		// The last task of a key removes it, so the map holds only keys with work in progress.
		void tail.then(() => {
			if (this.tails.get(key) === tail) this.tails.delete(key);
		});
		return result;
	}
}
