interface Entry {
	expires: number;
	expire(): void;
}

/**
 * Many deadlines on one timer. A per-operation setTimeout (plus the Promise.race around it) costs more than the
 * work on hot paths such as request/reply and JetStream acks; here an operation costs a map entry, and one
 * unref'd timer sweeps every `tickMs` while anything is pending. Deadlines fire up to `tickMs` late.
 */
export class Deadlines {
	private readonly entries = new Map<number, Entry>();
	private timer: NodeJS.Timeout | undefined;
	private next = 0;

	constructor(private readonly tickMs = 50) {}

	/** Calls `expire` once `ms` have passed, unless cleared first. */
	add(ms: number, expire: () => void): number {
		const id = this.next++;
		this.entries.set(id, { expires: Date.now() + ms, expire });
		if (!this.timer) {
			this.timer = setInterval(() => this.sweep(), this.tickMs);
			this.timer.unref();
		}
		return id;
	}

	clear(id: number): void {
		this.entries.delete(id);
	}

	/** `work`, or a rejection with `error()` if it has not settled within `ms`. */
	race<T>(work: Promise<T>, ms: number, error: () => Error): Promise<T> {
		return new Promise<T>((resolve, reject) => {
			const id = this.add(ms, () => reject(error()));
			work.then(
				(value) => {
					this.clear(id);
					resolve(value);
				},
				(err) => {
					this.clear(id);
					reject(err);
				},
			);
		});
	}

	get size(): number {
		return this.entries.size;
	}

	private sweep(): void {
		const now = Date.now();
		for (const [id, e] of this.entries) {
			if (e.expires > now) continue;
			this.entries.delete(id);
			e.expire();
		}
		if (this.entries.size === 0) {
			clearInterval(this.timer);
			this.timer = undefined;
		}
	}
}

/** The process's shared deadlines. */
export const deadlines = new Deadlines();
