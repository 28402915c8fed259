/**
 * Login throttling: after `maxFailures` failed logins within `windowMs`, the account (or the source address) is
 * locked for `lockMs`. Counting per source too stops one address from guessing across many accounts.
 */
import { systemClock, type Clock, type RecordStore } from "../store";

export interface ThrottleOptions {
	maxFailures: number;
	windowMs: number;
	lockMs: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { maxFailures: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };

export interface AttemptState {
	/** Times of recent failures, oldest first. */
	failures: number[];
	locked_until?: number;
}

export class LoginThrottle {
	constructor(
		private readonly store: RecordStore<AttemptState>,
		private readonly options: ThrottleOptions = DEFAULT_THROTTLE,
		private readonly clock: Clock = systemClock,
	) {}

	/** The time the first still-locked key unlocks, or undefined when none is locked. */
	async lockedUntil(keys: readonly string[]): Promise<number | undefined> {
		const now = this.clock();
		let until: number | undefined;
		for (const key of keys) {
			const s = await this.store.get(key);
			if (s?.locked_until !== undefined && s.locked_until > now) until = Math.max(until ?? 0, s.locked_until);
		}
		return until;
	}

	async failed(keys: readonly string[]): Promise<void> {
		const now = this.clock();
		for (const key of keys) {
			const s = (await this.store.get(key)) ?? { failures: [] };
			const failures = [...s.failures.filter((t) => t > now - this.options.windowMs), now];
			const locked = failures.length >= this.options.maxFailures;
			// A lock-out starts a fresh count: after it ends, the next failures are counted anew.
			await this.store.put(key, locked ? { failures: [], locked_until: now + this.options.lockMs } : { failures, locked_until: s.locked_until });
		}
	}

	/** A success clears the account's count (not the source's: one good password does not vouch for an address). */
	async succeeded(accountKey: string): Promise<void> {
		await this.store.delete(accountKey);
	}
}
