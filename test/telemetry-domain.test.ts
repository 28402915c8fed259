import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Done, Heartbeat, RunnerEvent } from "../events/telemetry";
import {
	AlertEvaluator,
	AlertLog,
	alertMsgId,
	makeRule,
	toRecord,
	type AlertRuleInput,
	type AlertTransition,
	type MetricSample,
} from "../services/telemetry/alerts";
import { AlertOutbox } from "../services/telemetry/alert-outbox";
import { RuleRevisions } from "../services/telemetry/alert-rule-store";
import { RunProgress, SeqWindow } from "../services/telemetry/progress";
import { downsample, MetricSeries, type SeriesPoint } from "../services/telemetry/series";
import { TelemetryState } from "../services/telemetry/telemetry-state";

const T0 = Date.parse("2025-01-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

function totals(points: SeriesPoint[]) {
	return {
		count: points.reduce((n, p) => n + p.count, 0),
		min: Math.min(...points.map((p) => p.min)),
		max: Math.max(...points.map((p) => p.max)),
	};
}

describe("series", () => {
	it("keeps raw points while under the capacity", () => {
		const s = new MetricSeries(1_000);
		for (let i = 0; i < 300; i++) s.add(T0 + i, i);
		assert.equal(s.size, 300);
		const points = s.query({ maxPoints: 1_000 });
		assert.equal(points.length, 300);
		assert.deepEqual(points[7], { t: T0 + 7, t_first: T0 + 7, count: 1, min: 7, max: 7, mean: 7, last: 7 });
	});

	it("a million points stay within the capacity, keep min/max, every sample and the shape", () => {
		const s = new MetricSeries(1_000);
		const N = 1_000_000;
		const period = 200_000;
		const wave = (i: number) => Math.sin((2 * Math.PI * i) / period);
		for (let i = 0; i < N; i++) {
			const v = i === 123_457 ? 50 : i === 876_543 ? -50 : wave(i);
			s.add(T0 + i, v);
			if (i % 10_007 === 0) assert.ok(s.size <= 1_000, `size ${s.size} at ${i}`);
		}
		assert.equal(s.samples, N);
		assert.ok(s.size <= 1_000 && s.size > 250, `size ${s.size}`);

		const all = s.query({ maxPoints: 1_000 });
		assert.deepEqual(totals(all), { count: N, min: -50, max: 50 }, "spikes and every sample accounted for");
		for (let i = 1; i < all.length; i++) assert.ok(all[i]!.t_first >= all[i - 1]!.t, "ordered, no overlap");
		const newest = all[all.length - 1]!;
		assert.deepEqual([newest.count, newest.t, newest.last], [1, T0 + N - 1, wave(N - 1)], "the newest samples stay raw");

		const coarse = s.query({ maxPoints: 100 });
		assert.ok(coarse.length <= 100 && coarse.length > 50, `${coarse.length} points`);
		assert.deepEqual(totals(coarse), { count: N, min: -50, max: 50 }, "downsampling on read keeps them too");
		for (const p of coarse) {
			if (p.max === 50 || p.min === -50) continue; // a point holding a spike has a skewed mean
			const mid = (p.t_first + p.t) / 2 - T0;
			assert.ok(Math.abs(p.mean - wave(mid)) < 0.05, `mean ${p.mean} vs ${wave(mid)} around sample ${mid}`);
		}
	});

	it("answers a time range, whole buckets at its edges", () => {
		const s = new MetricSeries(16);
		for (let i = 0; i < 100; i++) s.add(T0 + i * 1_000, i);
		const recent = s.query({ from: T0 + 96_000, to: T0 + 98_000, maxPoints: 100 });
		assert.deepEqual(
			recent.map((p) => [p.count, p.last]),
			[
				[1, 96],
				[1, 97],
				[1, 98],
			],
		);
		const edge = s.query({ from: T0 + 90_000, to: T0 + 95_000, maxPoints: 100 });
		assert.ok(edge[0]!.count > 1 && edge[0]!.t_first <= T0 + 90_000 && edge[0]!.t >= T0 + 90_000, "the bucket holding 90 s, whole");
		assert.deepEqual(edge.at(-1), { t: T0 + 95_000, t_first: T0 + 95_000, count: 1, min: 95, max: 95, mean: 95, last: 95 });
		const old = s.query({ from: T0 + 10_000, to: T0 + 20_000, maxPoints: 100 });
		assert.ok(old.length >= 1 && old.every((p) => p.count > 1), "old samples come as buckets");
		assert.ok(old[0]!.t >= T0 + 10_000 && old[old.length - 1]!.t_first <= T0 + 20_000);
		assert.deepEqual(s.query({ from: T0 + 200_000, maxPoints: 10 }), []);
	});

	it("never lets time go backwards within a series", () => {
		const s = new MetricSeries(8);
		s.add(T0 + 10, 1);
		s.add(T0 + 5, 2);
		assert.deepEqual(
			s.query({ maxPoints: 10 }).map((p) => p.t),
			[T0 + 10, T0 + 10],
		);
	});

	it("downsample merges by equal time slots and keeps min/max/last", () => {
		const points: SeriesPoint[] = Array.from({ length: 10 }, (_, i) => ({ t: i, t_first: i, count: 1, min: i, max: i, mean: i, last: i }));
		const two = downsample(points, 2);
		assert.equal(two.length, 2);
		assert.deepEqual(two.map((p) => [p.count, p.min, p.max, p.last]), [
			[5, 0, 4, 4],
			[5, 5, 9, 9],
		]);
		assert.equal(two[0]!.mean, 2);
	});
});

function hb(attempt: number, seq: number, atMs: number, extra: Partial<Heartbeat> = {}): Heartbeat {
	return { run_id: "r1", workspace: "ws", attempt, seq, at: iso(atMs), metrics: {}, ...extra };
}

describe("progress", () => {
	it("ignores duplicates and older attempts once a newer one is seen", () => {
		const p = new RunProgress("r1", "ws", 1);
		assert.equal(p.accept("heartbeat", hb(1, 0, T0)), "applied");
		p.applyHeartbeat(hb(1, 0, T0, { metrics: { loss: 2 } }), T0);
		assert.equal(p.accept("heartbeat", hb(1, 0, T0)), "duplicate");
		assert.equal(p.accept("heartbeat", hb(2, 0, T0 + 1_000)), "applied");
		p.applyHeartbeat(hb(2, 0, T0 + 1_000, { metrics: { acc: 0.5 } }), T0 + 1_000);
		assert.equal(p.accept("heartbeat", hb(1, 1, T0 + 2_000)), "stale-attempt");
		assert.equal(p.accept("done", { ...hb(1, 0, T0), status: "failed" } as unknown as Done), "stale-attempt");
		const v = p.view();
		assert.equal(v.attempt, 2);
		assert.deepEqual(v.metrics, { acc: 0.5 }, "a new attempt starts clean");
		assert.equal(v.heartbeats, 1);
		assert.equal(v.status, "running");
	});

	it("takes a message the sidecar stored late (after later ones) once, and forgets far-behind seqs", () => {
		const p = new RunProgress("r1", "ws", 1);
		assert.deepEqual(
			[0, 2, 1, 2, 1].map((seq) => p.accept("heartbeat", hb(1, seq, T0))),
			["applied", "applied", "applied", "duplicate", "duplicate"],
		);
		const w = new SeqWindow(8);
		for (let seq = 100; seq < 200; seq++) assert.equal(w.add(seq), true);
		assert.equal(w.add(150), false);
		assert.equal(w.add(195), false);
		assert.equal(w.add(10), false, "behind the window counts as seen");
	});

	it("estimates the end from the recent progress rate, in message time", () => {
		const p = new RunProgress("r1", "ws", 1);
		// 0.1 → 0.5 over 400 s: 0.001/s, so 500 s left after the last heartbeat.
		for (let i = 0; i <= 4; i++) {
			const m = hb(1, i, T0 + i * 100_000, { progress: { fraction: 0.1 + i * 0.1 }, metrics: { loss: 1 / (i + 1) } });
			assert.equal(p.accept("heartbeat", m), "applied");
			p.applyHeartbeat(m, Date.parse(m.at));
		}
		const v = p.view();
		assert.equal(v.fraction, 0.5);
		assert.equal(v.eta, iso(T0 + 400_000 + 500_000));
		assert.equal(v.eta_seconds, 500);
		assert.equal(v.last_heartbeat_at, iso(T0 + 400_000));
		assert.equal(v.started_at, iso(T0), "first telemetry when no started event");
	});

	it("derives the fraction from steps or epochs, records checkpoints, and finishes on done", () => {
		const p = new RunProgress("r1", "ws", 1);
		const started: RunnerEvent = { run_id: "r1", workspace: "ws", attempt: 1, seq: 0, at: iso(T0 - 5_000), type: "started", epochs: 4 };
		p.accept("event", started);
		p.applyEvent(started);
		const m = hb(1, 0, T0, { progress: { step: 25, steps: 100 } });
		p.accept("heartbeat", m);
		p.applyHeartbeat(m, T0);
		assert.equal(p.view().fraction, 0.25);
		const artifact = { uri: "s3://b/ck/1", path: "ck/1", bytes: 10, sha256: "a".repeat(64) };
		const ck: RunnerEvent = { ...started, seq: 1, at: iso(T0 + 1_000), type: "checkpoint_saved", artifact };
		p.accept("event", ck);
		p.applyEvent(ck);
		const done: Done = {
			run_id: "r1",
			workspace: "ws",
			attempt: 1,
			seq: 0,
			at: iso(T0 + 60_000),
			status: "succeeded",
			exit_code: 0,
			signal: null,
			started_at: iso(T0 - 5_000),
			metrics: { loss: 0.1 },
			artifacts: [artifact],
		};
		assert.equal(p.accept("done", done), "applied");
		p.applyDone(done);
		const v = p.view();
		assert.equal(v.status, "done");
		assert.equal(v.result, "succeeded");
		assert.equal(v.started_at, iso(T0 - 5_000));
		assert.equal(v.finished_at, iso(T0 + 60_000));
		assert.equal(v.fraction, 1);
		assert.equal(v.eta, undefined);
		assert.equal(v.epochs, 4);
		assert.deepEqual(v.checkpoints, [artifact], "the same checkpoint seen twice is listed once");
	});
});

function rule(over: Partial<AlertRuleInput> = {}) {
	return makeRule({ id: "r-loss", name: "loss too high", metric: "loss", op: ">", threshold: 1, ...over }, new Date(T0));
}

function sample(i: number, value: number, over: Partial<MetricSample> = {}): MetricSample {
	return { run_id: "run-a", workspace: "ws", attempt: 1, at: T0 + i * 1_000, metrics: { loss: value }, position: 100 + i, ...over };
}

/** Feeds values one per second; returns "i:state" per transition. */
function feed(ev: AlertEvaluator, values: number[], over: Partial<MetricSample> = {}): string[] {
	return values.flatMap((v, i) => ev.evaluate(sample(i, v, over)).map((t) => `${i}:${t.state}`));
}

describe("alert rules", () => {
	it("compares with each operator", () => {
		for (const [op, fires] of [
			[">", [false, false, true]],
			[">=", [false, true, true]],
			["<", [true, false, false]],
			["<=", [true, true, false]],
		] as const) {
			const got = [0.5, 1, 1.5].map((v) => new AlertEvaluator([rule({ op })]).evaluate(sample(0, v)).length === 1);
			assert.deepEqual(got, [...fires], op);
		}
	});

	it("raises once while the condition holds and resolves when it stops holding", () => {
		const ev = new AlertEvaluator([rule()]);
		assert.deepEqual(feed(ev, [0.5, 2, 3, 4, 0.9, 0.8, 2]), ["1:raised", "4:resolved", "6:raised"]);
		const [raised] = new AlertEvaluator([rule()]).evaluate(sample(3, 2));
		assert.equal(raised!.value, 2);
		assert.equal(raised!.position, 103);
		assert.equal(alertMsgId(raised!), "telemetry-alert:r-loss:run-a:103:raised");
	});

	it("waits for for_samples consecutive samples; a good sample starts the count over", () => {
		const ev = new AlertEvaluator([rule({ for_samples: 3 })]);
		assert.deepEqual(feed(ev, [2, 2, 0, 2, 2, 2, 2, 0]), ["5:raised", "7:resolved"]);
	});

	it("holds a new raise back during the cooldown, then raises if the condition still holds", () => {
		const ev = new AlertEvaluator([rule({ cooldown_ms: 10_000 })]);
		// raised at 0 s, resolved at 1 s, true again from 2 s: no raise before 10 s.
		assert.deepEqual(feed(ev, [2, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]), ["0:raised", "1:resolved", "10:raised"]);
	});

	it("keeps a state per run, honours the workspace and judges only samples after the rule's creation", () => {
		const ev = new AlertEvaluator([rule({ workspace: "ws" })]);
		assert.equal(ev.evaluate(sample(0, 2, { workspace: "other" })).length, 0);
		assert.equal(ev.evaluate(sample(0, 2, { at: T0 - 1 })).length, 0, "history before the rule existed");
		assert.equal(ev.evaluate(sample(1, 2)).length, 1);
		assert.equal(ev.evaluate(sample(1, 2, { run_id: "run-b" })).length, 1, "another run has its own alert");
		assert.equal(ev.evaluate(sample(2, 2)).length, 0);
		assert.ok(ev.isRaised("r-loss", "run-a"));
		assert.equal(ev.evaluate({ ...sample(3, 0), metrics: { acc: 1 } }).length, 0, "a heartbeat without the metric changes nothing");
		assert.ok(ev.isRaised("r-loss", "run-a"));
		ev.removeRule("r-loss");
		assert.equal(ev.evaluate(sample(4, 0)).length, 0);
	});

	it("is deterministic: the same samples and rules give the same alerts", () => {
		let x = 42;
		const random = () => ((x = (x * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31) * 2;
		const values = Array.from({ length: 5_000 }, random);
		const rules = [rule({ for_samples: 2, cooldown_ms: 5_000 }), rule({ id: "r-low", op: "<", threshold: 0.2 })];
		const run = () => {
			const ev = new AlertEvaluator(rules);
			return values.flatMap((v, i) => ev.evaluate(sample(i, v)).map((t) => alertMsgId(t)));
		};
		const first = run();
		assert.ok(first.length > 100);
		assert.deepEqual(run(), first);
	});

	it("the alert log keeps an alert once, newest first, bounded", () => {
		const log = new AlertLog(3);
		const ts = new AlertEvaluator([rule()]).evaluate(sample(0, 2));
		const rec = toRecord(ts[0]!);
		log.add(rec);
		log.add({ ...rec });
		assert.equal(log.list({ limit: 10 }).length, 1);
		for (let i = 1; i <= 4; i++) log.add({ ...rec, heartbeat_seq: 1_000 + i });
		assert.deepEqual(
			log.list({ limit: 10 }).map((r) => r.heartbeat_seq),
			[1_004, 1_003, 1_002],
		);
		assert.equal(log.list({ run_id: "other", limit: 10 }).length, 0);
	});
});

describe("telemetry state", () => {
	it("a redelivered or replayed heartbeat changes nothing and raises nothing twice", () => {
		const state = new TelemetryState(64);
		state.alerts.putRule(rule());
		const beats = [0.5, 2, 2, 0.5].map((loss, i) => ({ ...hb(1, i, T0 + i * 1_000, { metrics: { loss } }), run_id: "run-a" }));
		const first = beats.flatMap((b, i) => state.heartbeat(b, 10 + i).alerts.map((t) => t.state));
		assert.deepEqual(first, ["raised", "resolved"]);
		const again = beats.map((b, i) => state.heartbeat(b, 10 + i));
		assert.deepEqual(
			again.map((r) => r.acceptance),
			["duplicate", "duplicate", "duplicate", "duplicate"],
		);
		assert.equal(
			again.flatMap((r) => r.alerts).length,
			0,
		);
		const view = state.series("run-a", { maxPoints: 100 })!;
		assert.equal(view.series[0]!.samples, 4);
		assert.equal(state.series("nope", { maxPoints: 10 }), undefined);
		assert.equal(state.progress("run-a")!.heartbeats, 4);
		assert.equal(state.evictIdle(T0), 0);
		assert.equal(state.evictIdle(T0 + 10_000), 1);
		assert.equal(state.has("run-a"), false);
	});
});

describe("alert plumbing", () => {
	it("the outbox keeps what failed to publish and retries it, in order", async () => {
		const sent: string[] = [];
		let failing = true;
		const outbox = new AlertOutbox(async (t) => {
			if (failing) throw new Error("no stream");
			sent.push(alertMsgId(t));
		});
		const ev = new AlertEvaluator([rule()]);
		const ts: AlertTransition[] = [...ev.evaluate(sample(0, 2)), ...ev.evaluate(sample(1, 0))];
		outbox.add(ts);
		await assert.rejects(outbox.flush(), /no stream/);
		assert.equal(outbox.size, 2);
		assert.ok(outbox.holds(100) && outbox.holds(101) && !outbox.holds(102));
		failing = false;
		outbox.add(ts); // the redelivery derives the same alerts: same ids, kept once
		await outbox.flush();
		assert.deepEqual(sent, ["telemetry-alert:r-loss:run-a:100:raised", "telemetry-alert:r-loss:run-a:101:resolved"]);
		assert.equal(outbox.size, 0);
	});

	it("rule changes apply in revision order whatever order they arrive in", () => {
		const r = new RuleRevisions();
		const put = (revision: number) => ({ op: "put" as const, rule: rule(), revision });
		assert.equal(r.accept(put(3)), true);
		assert.equal(r.accept(put(2)), false, "an older load result");
		assert.equal(r.accept({ op: "delete", id: "r-loss", revision: 3 }), true, "a local delete of revision 3");
		assert.equal(r.accept(put(3)), false, "the watch's copy of the deleted put");
		assert.equal(r.accept({ op: "delete", id: "r-loss", revision: 4 }), true, "the watch's delete marker");
		assert.equal(r.accept(put(5)), true, "re-created later");
	});
});
