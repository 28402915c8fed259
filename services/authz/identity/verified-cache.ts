/**
 * Credentials already verified once, so the next call with the same one costs a map lookup instead of a signature
 * check and store reads (about 2 ms). Sound because revocation only ever goes one way: a revoked token id, session
 * or key is remembered here, by this instance when it revokes (at once) and from the bucket watch when another
 * instance does (within moments), and a remembered credential is refused from then on.
 */

/** Entries kept; past this the oldest are dropped (they are verified again on their next use). */
const MAX_ENTRIES = 10_000;

export class VerifiedCache<T> {
	private readonly entries = new Map<string, { value: T; expiresAt: number }>();
	/** Revoked ids (token ids, sessions, keys) until their credentials would have expired anyway. */
	private readonly revoked = new Map<string, number>();

	constructor(
		/** The ids a cached value can be revoked by (its token id and session, its key id). */
		private readonly idsOf: (value: T) => string[],
	) {}

	/** The value cached for a credential, unless it expired or one of its ids was revoked. */
	get(credential: string, now: number): T | undefined {
		const hit = this.entries.get(credential);
		if (!hit) return undefined;
		if (hit.expiresAt <= now || this.idsOf(hit.value).some((id) => this.revoked.has(id))) {
			this.entries.delete(credential);
			return undefined;
		}
		return hit.value;
	}

	remember(credential: string, value: T, expiresAt: number): void {
		if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
		this.entries.set(credential, { value, expiresAt });
	}

	/** From now on, no cached credential carrying `id` passes; kept until `until` (ms), when they expire anyway. */
	revoke(id: string, until: number, now: number): void {
		this.revoked.set(id, until);
		if (this.revoked.size > MAX_ENTRIES) for (const [k, t] of this.revoked) if (t <= now) this.revoked.delete(k);
	}
}
