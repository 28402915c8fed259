import type { Done, Heartbeat, RunnerEvent, TelemetryBase } from "../../events/telemetry";
import { AlertEvaluator, type AlertTransition } from "./alerts";
import { RunProgress, type Acceptance, type ProgressView, type TelemetryKindApplied } from "./progress";
import { DEFAULT_SERIES_CAPACITY, RunSeries, type SeriesPoint } from "./series";

/**
 * Everything the telemetry context knows about runs, fed one message at a time (live or replayed): progress,
 * metric series and alert states. Progress decides whether a message is new; only new heartbeats reach the series
 * and the alert rules, so feeding the same message twice changes nothing.
 */

export interface SeriesView {
	run_id: string;
	workspace: string;
	attempt: number;
	series: { metric: string; samples: number; points: SeriesPoint[] }[];
}

export interface SeriesRequest {
	metric?: string;
	from?: number;
	to?: number;
	maxPoints: number;
}

/**
 * A message whose time cannot be represented: the schema's date-time format accepts what RFC 3339 does, leap seconds
 * included, but JavaScript's Date cannot hold 23:59:60. Refused before anything changes (an alert at an invalid time
 * could never be published, and would stall the alerts behind it); retrying cannot help.
 */
export class TelemetryTimeError extends Error {
	override name = "TelemetryTimeError";
}

interface RunState {
	progress: RunProgress;
	series: RunSeries;
}

export class TelemetryState {
	private readonly runs = new Map<string, RunState>();
	readonly alerts = new AlertEvaluator();

	constructor(private readonly seriesCapacity = DEFAULT_SERIES_CAPACITY) {}

	private offer(kind: TelemetryKindApplied, m: TelemetryBase): { run: RunState; acceptance: Acceptance } {
		if (Number.isNaN(Date.parse(m.at))) {
			throw new TelemetryTimeError(
				`${kind} ${m.seq} of run ${m.run_id} (attempt ${m.attempt}): 'at' ${JSON.stringify(m.at)} is not a time this platform can represent (leap seconds are not supported)`,
			);
		}
		let run = this.runs.get(m.run_id);
		if (!run) {
			run = { progress: new RunProgress(m.run_id, m.workspace, m.attempt), series: new RunSeries(this.seriesCapacity) };
			this.runs.set(m.run_id, run);
		}
		return { run, acceptance: run.progress.accept(kind, m) };
	}

	/** `position`: the heartbeat's place in its stream (de-duplication id of the alerts it causes). */
	heartbeat(hb: Heartbeat, position: number): { acceptance: Acceptance; alerts: AlertTransition[] } {
		const { run, acceptance } = this.offer("heartbeat", hb);
		if (acceptance !== "applied") return { acceptance, alerts: [] };
		const at = Date.parse(hb.at);
		run.progress.applyHeartbeat(hb, at);
		run.series.add(at, hb.metrics);
		const alerts = this.alerts.evaluate({
			run_id: hb.run_id,
			workspace: hb.workspace,
			attempt: hb.attempt,
			at,
			metrics: hb.metrics,
			position,
		});
		return { acceptance, alerts };
	}

	event(ev: RunnerEvent): Acceptance {
		const { run, acceptance } = this.offer("event", ev);
		if (acceptance === "applied") run.progress.applyEvent(ev);
		return acceptance;
	}

	done(d: Done): Acceptance {
		const { run, acceptance } = this.offer("done", d);
		if (acceptance === "applied") run.progress.applyDone(d);
		return acceptance;
	}

	has(runId: string): boolean {
		return this.runs.has(runId);
	}

	get runCount(): number {
		return this.runs.size;
	}

	progress(runId: string): ProgressView | undefined {
		return this.runs.get(runId)?.progress.view();
	}

	series(runId: string, q: SeriesRequest): SeriesView | undefined {
		const run = this.runs.get(runId);
		if (!run) return undefined;
		const names = q.metric === undefined ? run.series.metricNames() : [q.metric];
		const series = names.flatMap((metric) => {
			const s = run.series.metric(metric);
			return s ? [{ metric, samples: s.samples, points: s.query({ from: q.from, to: q.to, maxPoints: q.maxPoints }) }] : [];
		});
		const p = run.progress;
		return { run_id: runId, workspace: p.workspace, attempt: p.attempt, series };
	}

	/** Forgets runs whose newest telemetry is older than `beforeMs` (the stream no longer has it either). */
	evictIdle(beforeMs: number): number {
		let n = 0;
		for (const [id, run] of this.runs) {
			if (run.progress.lastActivityMs() >= beforeMs) continue;
			this.runs.delete(id);
			this.alerts.forgetRun(id);
			n++;
		}
		return n;
	}
}
