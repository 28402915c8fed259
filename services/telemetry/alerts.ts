import type { TelemetryAlertRaised } from "../../events/catalog";
import type { Metrics } from "../../events/telemetry";

/**
 * Threshold alerts on heartbeat metrics. For each rule and run the evaluator keeps a small state machine:
 * `for_samples` consecutive samples over the threshold raise an alert once; it stays raised (no repeats) until a
 * sample is back under it, which resolves it; a new raise is held back until `cooldown_ms` after the previous one.
 * Everything is measured in message time, so the same samples and rules always give the same alerts (the start-up
 * replay relies on that).
 */

export const ALERT_OPS = [">", ">=", "<", "<="] as const;
export type AlertOp = (typeof ALERT_OPS)[number];

export interface AlertRule {
	id: string;
	name: string;
	/** Absent: every workspace. */
	workspace?: string;
	metric: string;
	op: AlertOp;
	threshold: number;
	/** Consecutive samples over the threshold before raising. */
	for_samples: number;
	/** After a raise, no new raise for the same run until this long after it (message time). */
	cooldown_ms: number;
	/** The rule judges samples from this time on (ISO); older telemetry is history it did not see. */
	created_at: string;
}

/** A rule as given: the counts have defaults, the creation time is set by makeRule. */
export type AlertRuleInput = Omit<AlertRule, "for_samples" | "cooldown_ms" | "created_at"> &
	Partial<Pick<AlertRule, "for_samples" | "cooldown_ms">>;

export function makeRule(input: AlertRuleInput, createdAt: Date): AlertRule {
	const rule: AlertRule = {
		id: input.id,
		name: input.name,
		metric: input.metric,
		op: input.op,
		threshold: input.threshold,
		for_samples: input.for_samples ?? 1,
		cooldown_ms: input.cooldown_ms ?? 0,
		created_at: createdAt.toISOString(),
	};
	if (input.workspace !== undefined) rule.workspace = input.workspace;
	return rule;
}

/** Same rule apart from its creation time (an idempotent re-create). */
export function sameRule(a: AlertRule, b: AlertRule): boolean {
	const { created_at: _a, ...x } = a;
	const { created_at: _b, ...y } = b;
	return JSON.stringify(x, Object.keys(x).sort()) === JSON.stringify(y, Object.keys(y).sort());
}

export function breaches(op: AlertOp, value: number, threshold: number): boolean {
	switch (op) {
		case ">":
			return value > threshold;
		case ">=":
			return value >= threshold;
		case "<":
			return value < threshold;
		case "<=":
			return value <= threshold;
	}
}

/** One heartbeat's metrics as the evaluator sees them. */
export interface MetricSample {
	run_id: string;
	workspace: string;
	attempt: number;
	/** Message time, ms since the epoch. */
	at: number;
	metrics: Metrics;
	/** Position of the heartbeat in its stream: makes the alert's de-duplication id. */
	position: number;
}

export interface AlertTransition {
	state: "raised" | "resolved";
	rule: AlertRule;
	run_id: string;
	workspace: string;
	attempt: number;
	value: number;
	at: number;
	position: number;
	/** For `resolved`: when the alert was raised. */
	raised_at?: number;
}

/** Deterministic id of an alert: the same transition derived twice (redelivery, replay) is published once. */
export function alertMsgId(t: Pick<AlertTransition, "state" | "rule" | "run_id" | "position">): string {
	return `telemetry-alert:${t.rule.id}:${t.run_id}:${t.position}:${t.state}`;
}

interface RuleRunState {
	streak: number;
	raisedAt?: number;
	/** Time of the last raise, kept after resolving for the cooldown. */
	lastRaiseAt?: number;
}

export class AlertEvaluator {
	private readonly rules = new Map<string, AlertRule>();
	/** Rules by metric, so a heartbeat only looks at the rules of the metrics it carries. */
	private byMetric = new Map<string, { rule: AlertRule; sinceMs: number }[]>();
	/** run id → rule id → state */
	private readonly states = new Map<string, Map<string, RuleRunState>>();

	constructor(rules: AlertRule[] = []) {
		for (const r of rules) this.rules.set(r.id, r);
		this.reindex();
	}

	private reindex(): void {
		this.byMetric = new Map();
		for (const rule of this.rules.values()) {
			const list = this.byMetric.get(rule.metric) ?? [];
			list.push({ rule, sinceMs: Date.parse(rule.created_at) });
			this.byMetric.set(rule.metric, list);
		}
	}

	listRules(): AlertRule[] {
		return [...this.rules.values()].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
	}

	getRule(id: string): AlertRule | undefined {
		return this.rules.get(id);
	}

	/** Adds or replaces a rule; a replaced rule starts from a clean state. */
	putRule(rule: AlertRule): void {
		const previous = this.rules.get(rule.id);
		if (previous && sameRule(previous, rule) && previous.created_at === rule.created_at) return;
		this.rules.set(rule.id, rule);
		if (previous) this.forgetRule(rule.id);
		this.reindex();
	}

	removeRule(id: string): boolean {
		const had = this.rules.delete(id);
		if (had) {
			this.forgetRule(id);
			this.reindex();
		}
		return had;
	}

	private forgetRule(id: string): void {
		for (const byRule of this.states.values()) byRule.delete(id);
	}

	forgetRun(runId: string): void {
		this.states.delete(runId);
	}

	/** Whether the rule's alert is raised for the run right now. */
	isRaised(ruleId: string, runId: string): boolean {
		return this.states.get(runId)?.get(ruleId)?.raisedAt !== undefined;
	}

	/** Feeds one heartbeat's metrics; returns the alerts it raises or resolves. */
	evaluate(sample: MetricSample): AlertTransition[] {
		if (this.byMetric.size === 0) return [];
		let out: AlertTransition[] | undefined;
		for (const metric in sample.metrics) {
			const rules = this.byMetric.get(metric);
			if (!rules) continue;
			const value = sample.metrics[metric]!;
			for (const { rule, sinceMs } of rules) {
				if (sample.at < sinceMs) continue;
				const t = this.step(rule, sample, value);
				if (t) (out ??= []).push(t);
			}
		}
		return out ?? [];
	}

	private step(rule: AlertRule, sample: MetricSample, value: number): AlertTransition | undefined {
		if (rule.workspace !== undefined && rule.workspace !== sample.workspace) return undefined;
		let byRule = this.states.get(sample.run_id);
		if (!byRule) this.states.set(sample.run_id, (byRule = new Map()));
		let st = byRule.get(rule.id);
		if (!st) byRule.set(rule.id, (st = { streak: 0 }));
		const { run_id, workspace, attempt, at, position } = sample;
		const base = { rule, run_id, workspace, attempt, value, at, position };

		if (!breaches(rule.op, value, rule.threshold)) {
			st.streak = 0;
			if (st.raisedAt === undefined) return undefined;
			const raisedAt = st.raisedAt;
			st.raisedAt = undefined;
			return { state: "resolved", ...base, raised_at: raisedAt };
		}
		st.streak++;
		if (st.raisedAt !== undefined || st.streak < rule.for_samples) return undefined;
		if (st.lastRaiseAt !== undefined && sample.at - st.lastRaiseAt < rule.cooldown_ms) return undefined;
		st.raisedAt = sample.at;
		st.lastRaiseAt = sample.at;
		return { state: "raised", ...base };
	}
}

/** An alert as published (the event's payload), kept for the `alerts` action. */
export type AlertRecord = TelemetryAlertRaised & { state: "raised" | "resolved"; raised_at?: string };

function recordKey(r: AlertRecord): string {
	return `${r.rule_id}:${r.run_id}:${r.heartbeat_seq}:${r.state}`;
}

/** The most recent alerts, newest last, bounded; an alert seen twice (history read, then a re-publish) is kept once. */
export class AlertLog {
	private readonly records: AlertRecord[] = [];
	private readonly keys = new Set<string>();

	constructor(private readonly capacity = 1_000) {}

	add(r: AlertRecord): void {
		const key = recordKey(r);
		if (this.keys.has(key)) return;
		this.keys.add(key);
		this.records.push(r);
		if (this.records.length <= this.capacity) return;
		for (const old of this.records.splice(0, this.records.length - this.capacity)) this.keys.delete(recordKey(old));
	}

	/** Newest first. */
	list(q: { run_id?: string; limit: number }): AlertRecord[] {
		const out: AlertRecord[] = [];
		for (let i = this.records.length - 1; i >= 0 && out.length < q.limit; i--) {
			const r = this.records[i]!;
			if (q.run_id === undefined || r.run_id === q.run_id) out.push(r);
		}
		return out;
	}

	hasRun(runId: string): boolean {
		return this.records.some((r) => r.run_id === runId);
	}
}

export function toRecord(t: AlertTransition): AlertRecord {
	const r: AlertRecord = {
		state: t.state,
		rule_id: t.rule.id,
		rule_name: t.rule.name,
		run_id: t.run_id,
		workspace: t.workspace,
		attempt: t.attempt,
		metric: t.rule.metric,
		op: t.rule.op,
		threshold: t.rule.threshold,
		value: t.value,
		at: new Date(t.at).toISOString(),
		heartbeat_seq: t.position,
	};
	if (t.raised_at !== undefined) r.raised_at = new Date(t.raised_at).toISOString();
	return r;
}
