import type { KV, KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { createOrGet, openBucket } from "../../lib/kv";
import type { AlertRule } from "./alerts";

export const ALERT_RULES_BUCKET = "telemetry_alert_rules";

/** A rule stored, or removed, at a KV revision. */
export type RuleChange = { revision: number } & ({ op: "put"; rule: AlertRule } | { op: "delete"; id: string });

/**
 * Orders rule changes per id when they arrive from several places (load, local writes, watch): a put applies when
 * newer than anything seen for its id; a delete also applies at the revision of the put it removed.
 */
export class RuleRevisions {
	private readonly seen = new Map<string, number>();

	accept(c: RuleChange): boolean {
		const id = c.op === "put" ? c.rule.id : c.id;
		const last = this.seen.get(id) ?? 0;
		if (c.op === "put" ? c.revision <= last : c.revision < last) return false;
		this.seen.set(id, Math.max(last, c.revision));
		return true;
	}
}

function toChange(e: KvEntry): RuleChange {
	return e.operation === "PUT"
		? { op: "put", rule: e.json<AlertRule>(), revision: e.revision }
		: { op: "delete", id: e.key, revision: e.revision };
}

/**
 * Alert rules in a JetStream KV bucket (one key per rule id), so they survive restarts and every instance sees the
 * same set. `changes` reports every put and delete, local or not, with its revision: applying only revisions newer
 * than the last one seen per key makes the initial load, local writes and the watch safe in any order.
 */
export class AlertRuleStore {
	private stopWatch: (() => void) | undefined;

	private constructor(private readonly kv: KV) {}

	/** Opens the bucket, creating it with `replicas` replicas when missing. */
	static async open(nc: NatsConnection, replicas: number): Promise<AlertRuleStore> {
		const kv = await openBucket(nc, ALERT_RULES_BUCKET, {
			history: 1,
			replicas,
			description: "Telemetry alert rules, by rule id",
		});
		return new AlertRuleStore(kv);
	}

	/** Calls `onChange` for every later change, then returns every stored rule (with their revisions). */
	async load(onChange: (c: RuleChange) => void): Promise<RuleChange[]> {
		const watch = await this.kv.watch({ include: "updates" });
		this.stopWatch = () => watch.stop();
		void (async () => {
			for await (const e of watch) onChange(toChange(e));
		})().catch(() => undefined);
		const stored: RuleChange[] = [];
		for await (const key of await this.kv.keys()) {
			const e = await this.kv.get(key);
			if (e?.operation === "PUT") stored.push(toChange(e));
		}
		return stored;
	}

	/** Stores a new rule; when the id is taken, returns the stored one instead (the caller compares). */
	async create(rule: AlertRule): Promise<{ created: true; change: RuleChange } | { created: false; existing: AlertRule }> {
		const stored = await createOrGet(this.kv, rule.id, JSON.stringify(rule));
		return stored.created
			? { created: true, change: { op: "put", rule, revision: stored.revision } }
			: { created: false, existing: stored.entry.json<AlertRule>() };
	}

	/** Removes a rule; undefined when there was none. */
	async delete(id: string): Promise<RuleChange | undefined> {
		const e = await this.kv.get(id);
		if (e?.operation !== "PUT") return undefined;
		await this.kv.delete(id, { previousSeq: e.revision });
		// The delete marker's revision is unknown here; the put's own is enough to order it after everything before.
		return { op: "delete", id, revision: e.revision };
	}

	close(): void {
		this.stopWatch?.();
	}
}
