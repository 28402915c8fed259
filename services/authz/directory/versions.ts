/**
 * Change counters that make cached decisions stale: one per user (its own record, memberships, direct bindings)
 * and one global epoch (groups, departments, roles, group or department bindings, which may touch many users).
 * The service bumps them too when another instance reports a change.
 */
export class ChangeVersions {
	private epochValue = 0;
	private readonly users = new Map<string, number>();
	private readonly listeners: Array<() => void> = [];

	get epoch(): number {
		return this.epochValue;
	}

	principal(userId: string): string {
		return `${this.epochValue}.${this.users.get(userId) ?? 0}`;
	}

	bumpUser(userId: string): void {
		this.users.set(userId, (this.users.get(userId) ?? 0) + 1);
	}

	bumpAll(): void {
		this.epochValue++;
		for (const l of this.listeners) l();
	}

	/** Called on every global bump, e.g. to drop a cache at once instead of letting it age out. */
	onEpoch(listener: () => void): void {
		this.listeners.push(listener);
	}
}
