import { alertMsgId, type AlertTransition } from "./alerts";

/**
 * Alerts waiting to be published. A heartbeat updates the views before its alerts go out, so when publishing fails
 * (the heartbeat is then redelivered, a duplicate for the views) its alerts must not be lost: they stay here, in
 * order, and the redelivery publishes them (`holds`). Publishing runs one at a time so a rule's raise precedes its
 * resolve; the ids are deterministic, so a retry after a lost acknowledgement is de-duplicated by JetStream.
 */
export class AlertOutbox {
	private readonly pending = new Map<string, AlertTransition>();
	private chain: Promise<void> = Promise.resolve();

	constructor(private readonly publish: (t: AlertTransition) => Promise<void>) {}

	get size(): number {
		return this.pending.size;
	}

	add(transitions: AlertTransition[]): void {
		for (const t of transitions) this.pending.set(alertMsgId(t), t);
	}

	/** Whether alerts caused by the message at `position` are still to be published. */
	holds(position: number): boolean {
		if (this.pending.size === 0) return false;
		for (const t of this.pending.values()) if (t.position === position) return true;
		return false;
	}

	/** Publishes everything pending; rejects with the first failure (what failed stays pending). */
	flush(): Promise<void> {
		const run = async () => {
			for (const [id, t] of this.pending) {
				await this.publish(t);
				this.pending.delete(id);
			}
		};
		const next = this.chain.then(run);
		this.chain = next.catch(() => undefined);
		return next;
	}
}
