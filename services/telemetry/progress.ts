import type { Artifact, Done, Heartbeat, Metrics, Resources, RunnerEvent, TelemetryBase } from "../../events/telemetry";

/**
 * Where a run stands, as its telemetry tells it. Only the newest attempt counts: once attempt n is seen, anything
 * from an earlier attempt is stale. Within an attempt each kind numbers its messages (`seq`), so a message already
 * applied (a redelivery, or one the start-up replay saw) is recognised and skipped.
 */

export type TelemetryKindApplied = "heartbeat" | "event" | "done";

/** What happened to a message offered to a run's progress. */
export type Acceptance = "applied" | "duplicate" | "stale-attempt";

export interface ProgressView {
	run_id: string;
	workspace: string;
	attempt: number;
	/** `done` once the attempt reported its exit; `result` then says how it ended. */
	status: "running" | "done";
	result?: "succeeded" | "failed";
	exit_code?: number | null;
	signal?: string | null;
	reason?: string;
	epoch?: number;
	epochs?: number;
	step?: number;
	steps?: number;
	/** 0..1: reported, else step/steps, else epoch/epochs. */
	fraction?: number;
	metrics: Metrics;
	resources?: Resources;
	heartbeats: number;
	last_heartbeat_at?: string;
	started_at?: string;
	finished_at?: string;
	/** Estimated end (message time), from the progress rate over the recent heartbeats; absent when unknown. */
	eta?: string;
	eta_seconds?: number;
	checkpoints: Artifact[];
}

/**
 * The `seq`s seen of one kind. A sidecar retrying a failed publish may store a message after later ones, so a
 * lower seq is not necessarily a repeat: the window remembers the last `size` seqs individually (bounded memory);
 * only what falls behind it counts as seen.
 */
export class SeqWindow {
	private max = -1;
	private seen = new Set<number>();

	constructor(private readonly size = 512) {}

	/** True the first time `seq` is offered. */
	add(seq: number): boolean {
		if (seq <= this.max - this.size || this.seen.has(seq)) return false;
		this.seen.add(seq);
		if (seq > this.max) this.max = seq;
		if (this.seen.size > 2 * this.size) this.seen = new Set([...this.seen].filter((s) => s > this.max - this.size));
		return true;
	}
}

/** Heartbeats the ETA's rate is measured over: long enough to smooth noise, short enough to follow a change. */
const RATE_WINDOW = 64;

interface AttemptState {
	attempt: number;
	seen: Record<TelemetryKindApplied, SeqWindow>;
	status: "running" | "done";
	result?: "succeeded" | "failed";
	exitCode?: number | null;
	signal?: string | null;
	reason?: string;
	epoch?: number;
	epochs?: number;
	step?: number;
	steps?: number;
	reportedFraction?: number;
	metrics: Metrics;
	resources?: Resources;
	heartbeats: number;
	lastHeartbeatAt?: string;
	startedAt?: string;
	firstSeenAt?: string;
	finishedAt?: string;
	/** (time ms, fraction) of recent heartbeats, oldest first. */
	rateWindow: [number, number][];
	checkpoints: Map<string, Artifact>;
}

function freshAttempt(attempt: number): AttemptState {
	return {
		attempt,
		seen: { heartbeat: new SeqWindow(), event: new SeqWindow(), done: new SeqWindow() },
		status: "running",
		metrics: {},
		heartbeats: 0,
		rateWindow: [],
		checkpoints: new Map(),
	};
}

export function fractionOf(p: { fraction?: number; step?: number; steps?: number; epoch?: number; epochs?: number }): number | undefined {
	if (p.fraction !== undefined) return p.fraction;
	if (p.step !== undefined && p.steps) return Math.min(1, p.step / p.steps);
	if (p.epoch !== undefined && p.epochs) return Math.min(1, p.epoch / p.epochs);
	return undefined;
}

/** Remaining ms at the rate between the oldest and newest sample of the window, or undefined without progress. */
export function estimateRemainingMs(window: readonly [number, number][]): number | undefined {
	if (window.length < 2) return undefined;
	const [t0, f0] = window[0]!;
	const [t1, f1] = window[window.length - 1]!;
	const rate = (f1 - f0) / (t1 - t0);
	if (!(rate > 0) || !Number.isFinite(rate)) return undefined;
	return Math.max(0, (1 - f1) / rate);
}

export class RunProgress {
	private state: AttemptState;

	constructor(
		readonly runId: string,
		readonly workspace: string,
		attempt: number,
	) {
		this.state = freshAttempt(attempt);
	}

	get attempt(): number {
		return this.state.attempt;
	}

	/** Decides whether a message is new for this run; a newer attempt starts over. */
	accept(kind: TelemetryKindApplied, m: TelemetryBase): Acceptance {
		if (m.attempt < this.state.attempt) return "stale-attempt";
		if (m.attempt > this.state.attempt) this.state = freshAttempt(m.attempt);
		if (!this.state.seen[kind].add(m.seq)) return "duplicate";
		this.state.firstSeenAt ??= m.at;
		return "applied";
	}

	/** Call after accept() returned "applied". */
	applyHeartbeat(hb: Heartbeat, atMs: number): void {
		const s = this.state;
		s.heartbeats++;
		s.lastHeartbeatAt = hb.at;
		Object.assign(s.metrics, hb.metrics);
		if (hb.resources) s.resources = hb.resources;
		const p = hb.progress;
		if (p) {
			if (p.epoch !== undefined) s.epoch = p.epoch;
			if (p.epochs !== undefined) s.epochs = p.epochs;
			if (p.step !== undefined) s.step = p.step;
			if (p.steps !== undefined) s.steps = p.steps;
			s.reportedFraction = p.fraction;
			this.sampleRate(atMs);
		}
	}

	applyEvent(ev: RunnerEvent): void {
		const s = this.state;
		if (ev.type === "started") s.startedAt ??= ev.at;
		if (ev.epoch !== undefined) s.epoch = ev.epoch;
		if (ev.epochs !== undefined) s.epochs = ev.epochs;
		if (ev.metrics) Object.assign(s.metrics, ev.metrics);
		if (ev.artifact) s.checkpoints.set(ev.artifact.path, ev.artifact);
	}

	private fraction(): number | undefined {
		const s = this.state;
		return fractionOf({ fraction: s.reportedFraction, step: s.step, steps: s.steps, epoch: s.epoch, epochs: s.epochs });
	}

	/** The ETA follows heartbeats only: their regular beat gives a steady rate. */
	private sampleRate(atMs: number): void {
		const f = this.fraction();
		if (f === undefined) return;
		const w = this.state.rateWindow;
		w.push([atMs, f]);
		if (w.length > RATE_WINDOW) w.shift();
	}

	applyDone(d: Done): void {
		const s = this.state;
		s.status = "done";
		s.result = d.status;
		s.exitCode = d.exit_code;
		s.signal = d.signal;
		if (d.reason !== undefined) s.reason = d.reason;
		s.startedAt ??= d.started_at;
		s.finishedAt = d.at;
		Object.assign(s.metrics, d.metrics);
		for (const a of d.artifacts) s.checkpoints.set(a.path, a);
	}

	/** Time of the newest message seen (ms), for eviction of idle runs. */
	lastActivityMs(): number {
		const s = this.state;
		return Math.max(...[s.lastHeartbeatAt, s.finishedAt, s.startedAt, s.firstSeenAt].map((t) => (t ? Date.parse(t) : -Infinity)));
	}

	view(): ProgressView {
		const s = this.state;
		const fraction = s.status === "done" && s.result === "succeeded" ? 1 : this.fraction();
		const remaining = s.status === "running" ? estimateRemainingMs(s.rateWindow) : undefined;
		const lastSample = s.rateWindow[s.rateWindow.length - 1];
		const v: ProgressView = {
			run_id: this.runId,
			workspace: this.workspace,
			attempt: s.attempt,
			status: s.status,
			metrics: { ...s.metrics },
			heartbeats: s.heartbeats,
			checkpoints: [...s.checkpoints.values()],
		};
		if (s.result !== undefined) v.result = s.result;
		if (s.exitCode !== undefined) v.exit_code = s.exitCode;
		if (s.signal !== undefined) v.signal = s.signal;
		if (s.reason !== undefined) v.reason = s.reason;
		if (s.epoch !== undefined) v.epoch = s.epoch;
		if (s.epochs !== undefined) v.epochs = s.epochs;
		if (s.step !== undefined) v.step = s.step;
		if (s.steps !== undefined) v.steps = s.steps;
		if (fraction !== undefined) v.fraction = fraction;
		if (s.resources) v.resources = s.resources;
		if (s.lastHeartbeatAt) v.last_heartbeat_at = s.lastHeartbeatAt;
		const started = s.startedAt ?? s.firstSeenAt;
		if (started) v.started_at = started;
		if (s.finishedAt) v.finished_at = s.finishedAt;
		if (remaining !== undefined && lastSample) {
			v.eta = new Date(lastSample[0] + remaining).toISOString();
			v.eta_seconds = Math.round(remaining / 1000);
		}
		return v;
	}
}
