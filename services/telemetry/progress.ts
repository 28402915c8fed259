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
 * lower seq is not necessarily a repeat: the window remembers the last `size` seqs individually, in a ring where
 * two seqs of the window never share a slot (constant memory, no allocation per message); what falls behind the
 * window counts as seen.
 */
export class SeqWindow {
	private max = -1;
	private readonly slots: Float64Array;

	constructor(private readonly size = 512) {
		this.slots = new Float64Array(size).fill(-1);
	}

	/** True the first time `seq` is offered. */
	add(seq: number): boolean {
		if (seq <= this.max - this.size) return false;
		const slot = seq % this.size;
		if (this.slots[slot] === seq) return false;
		this.slots[slot] = seq;
		if (seq > this.max) this.max = seq;
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
	/** (time ms, fraction) of recent heartbeats. */
	rateWindow: RateWindow;
	checkpoints: Map<string, Artifact>;
}

function freshAttempt(attempt: number): AttemptState {
	return {
		attempt,
		seen: { heartbeat: new SeqWindow(), event: new SeqWindow(), done: new SeqWindow() },
		status: "running",
		metrics: {},
		heartbeats: 0,
		rateWindow: new RateWindow(RATE_WINDOW),
		checkpoints: new Map(),
	};
}

export function fractionOf(p: { fraction?: number; step?: number; steps?: number; epoch?: number; epochs?: number }): number | undefined {
	if (p.fraction !== undefined) return p.fraction;
	if (p.step !== undefined && p.steps) return Math.min(1, p.step / p.steps);
	if (p.epoch !== undefined && p.epochs) return Math.min(1, p.epoch / p.epochs);
	return undefined;
}

/** The last `size` (time, fraction) samples, in a ring: one heartbeat costs two stores. */
export class RateWindow {
	private readonly times: Float64Array;
	private readonly fractions: Float64Array;
	private count = 0;

	constructor(private readonly size: number) {
		this.times = new Float64Array(size);
		this.fractions = new Float64Array(size);
	}

	push(t: number, fraction: number): void {
		const i = this.count++ % this.size;
		this.times[i] = t;
		this.fractions[i] = fraction;
	}

	/** Time of the newest sample. */
	get lastTime(): number | undefined {
		return this.count ? this.times[(this.count - 1) % this.size] : undefined;
	}

	/** Remaining ms at the rate between the oldest and newest sample, or undefined without progress. */
	remainingMs(): number | undefined {
		if (this.count < 2) return undefined;
		const oldest = this.count > this.size ? this.count % this.size : 0;
		const newest = (this.count - 1) % this.size;
		const f1 = this.fractions[newest]!;
		const rate = (f1 - this.fractions[oldest]!) / (this.times[newest]! - this.times[oldest]!);
		if (!(rate > 0) || !Number.isFinite(rate)) return undefined;
		return Math.max(0, (1 - f1) / rate);
	}
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
		this.state.rateWindow.push(atMs, f);
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
		const remaining = s.status === "running" ? s.rateWindow.remainingMs() : undefined;
		const lastSample = s.rateWindow.lastTime;
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
		if (remaining !== undefined && lastSample !== undefined) {
			v.eta = new Date(lastSample + remaining).toISOString();
			v.eta_seconds = Math.round(remaining / 1000);
		}
		return v;
	}
}
