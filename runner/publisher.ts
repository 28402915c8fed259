import { headers as natsHeaders } from "@nats-io/transport-node";
import type { AckedPublisher } from "../events/acked-publisher";
import { HEADERS } from "../events/headers";
import { subjects, type TelemetryKind } from "../events/subjects";
import { telemetryMsgId, type TelemetryBase, type TelemetryPayloads } from "../events/telemetry";

/**
 * The sidecar's outbox: every telemetry message gets its sequence and de-duplication id when it is queued, and
 * stays queued until JetStream acknowledged it. Through a NATS restart the queue grows and is re-sent with the
 * same ids, so the stream keeps each message once.
 */

interface Queued {
	kind: TelemetryKind;
	subject: string;
	msgId: string;
	data: string;
}

export interface PublisherLog {
	warn(msg: string): void;
}

export interface RunIdentity {
	workspace: string;
	runId: string;
	attempt: number;
	traceId: string;
}

type Body<K extends TelemetryKind> = Omit<TelemetryPayloads[K], keyof TelemetryBase>;

/** Sent together per round; JetStream acks arrive in parallel. */
const BATCH = 64;
/** Retries stay frequent: a cluster's leader election refuses writes for seconds, and silence longer than three
 * heartbeat intervals counts as a lost run. */
const MAX_BACKOFF_MS = 1_000;

export class TelemetryPublisher {
	private readonly queue: Queued[] = [];
	private readonly seq: Record<TelemetryKind, number> = { heartbeat: 0, event: 0, done: 0, log: 0 };
	private pumping: Promise<void> | undefined;
	private dropped = 0;
	/** The front of the queue being sent right now: bound() must not remove those. */
	private inFlight = 0;
	private drained: (() => void)[] = [];

	constructor(
		private readonly acked: AckedPublisher,
		private readonly run: RunIdentity,
		private readonly opts: { maxQueued: number; log: PublisherLog },
	) {}

	/** Queues one message; returns at once (sending happens in the background). */
	send<K extends TelemetryKind>(kind: K, body: Body<K>): void {
		const payload = {
			run_id: this.run.runId,
			workspace: this.run.workspace,
			attempt: this.run.attempt,
			seq: this.seq[kind]++,
			at: new Date().toISOString(),
			...body,
		} as TelemetryPayloads[K];
		this.queue.push({
			kind,
			subject: subjects.telemetry(this.run.workspace, this.run.runId, kind),
			msgId: telemetryMsgId(kind, payload),
			data: JSON.stringify(payload),
		});
		this.bound();
		this.pumping ??= this.pump().finally(() => (this.pumping = undefined));
	}

	/** Messages not yet acknowledged. */
	get pending(): number {
		return this.queue.length;
	}

	/** Resolves true once everything queued is stored, false after `timeoutMs`. */
	async drain(timeoutMs: number): Promise<boolean> {
		if (!this.queue.length) return true;
		return new Promise((resolve) => {
			const timer = setTimeout(() => resolve(false), timeoutMs);
			this.drained.push(() => {
				clearTimeout(timer);
				resolve(true);
			});
		});
	}

	/**
	 * A very long outage must not exhaust memory: past the bound, the oldest heartbeats and log batches go (never
	 * events or done), and the loss is reported.
	 */
	private bound(): void {
		while (this.queue.length > this.opts.maxQueued) {
			const i = this.queue.findIndex((q, at) => at >= this.inFlight && (q.kind === "heartbeat" || q.kind === "log"));
			if (i < 0) break;
			this.queue.splice(i, 1);
			if (this.dropped++ % 1_000 === 0) {
				this.opts.log.warn(`telemetry queue full (${this.opts.maxQueued}): dropped ${this.dropped} heartbeats/log batches so far`);
			}
		}
	}

	private async pump(): Promise<void> {
		let failures = 0;
		while (this.queue.length) {
			const batch = this.queue.slice(0, BATCH);
			this.inFlight = batch.length;
			const results = await Promise.allSettled(batch.map((q) => this.publish(q)));
			this.inFlight = 0;
			const failed = new Set(batch.filter((_q, i) => results[i]!.status === "rejected"));
			// Remove what was stored; keep the rest at the front, in order, for the next round.
			this.queue.splice(0, batch.length, ...batch.filter((q) => failed.has(q)));
			if (failed.size) {
				failures++;
				const first = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
				if (failures === 1 || failures % 20 === 0) {
					this.opts.log.warn(`telemetry not stored yet (${failed.size} messages, ${this.queue.length} queued): ${(first.reason as Error).message}; retrying`);
				}
				await new Promise((r) => setTimeout(r, Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(failures, 6))));
			} else {
				failures = 0;
			}
		}
		for (const done of this.drained.splice(0)) done();
	}

	private publish(q: Queued): Promise<unknown> {
		const h = natsHeaders();
		h.set(HEADERS.msgId, q.msgId);
		h.set(HEADERS.traceId, this.run.traceId);
		h.set(HEADERS.eventType, `telemetry.${q.kind}`);
		h.set(HEADERS.schemaVersion, "1");
		return this.acked.publish(q.subject, q.data, h);
	}
}
