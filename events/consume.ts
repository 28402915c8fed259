import {
	AckPolicy,
	DeliverPolicy,
	JetStreamApiCodes,
	JetStreamApiError,
	type ConsumerConfig,
	type ConsumerMessages,
	type JetStreamClient,
	type JetStreamManager,
	type JsMsg,
} from "@nats-io/jetstream";
import { headers as natsHeaders, nanos, type MsgHdrs } from "@nats-io/transport-node";
import type { AckedPublisher } from "./acked-publisher";
import { randomUUID } from "node:crypto";
import { deadlines } from "../lib/deadlines";
import { describeFieldErrors, type FieldError } from "../lib/schemas";
import { DLQ_HEADERS, HEADERS, type DeadLetterReason } from "./headers";
import { subjects } from "./subjects";

/** What a handler learns about the message besides its payload. */
export interface Delivery {
	/** The publisher's de-duplication key; handlers use it (or a domain key) to stay idempotent. */
	msgId: string | undefined;
	traceId: string;
	/** 1 on first delivery, then counts redeliveries. */
	deliveryCount: number;
	stream: string;
	consumer: string;
	seq: number;
	subject: string;
	publishedAt: Date;
	schemaVersion: number | undefined;
	header(name: string): string | undefined;
}

/** The JetStream handles a consumer works with (a Bus has them all). */
export interface JetStreamHandles {
	js: JetStreamClient;
	jsm: JetStreamManager;
	acked: AckedPublisher;
}

export type DeliveryHandler<T> = (payload: T, delivery: Delivery) => Promise<void> | void;

export interface ConsumerLog {
	debug(...args: unknown[]): void;
	info(...args: unknown[]): void;
	warn(...args: unknown[]): void;
	error(...args: unknown[]): void;
}

export interface DurableConsumerOptions<T> {
	stream: string;
	/** Shared by every instance of a service, so they split the work. */
	durable: string;
	filterSubject: string;
	description?: string;
	/**
	 * Schema check of each payload (the delivery tells its subject, for a consumer of several types); a message
	 * that fails it is dead-lettered at once (retrying cannot help).
	 */
	validate?: (payload: unknown, delivery: Delivery) => FieldError[];
	handler: DeliveryHandler<T>;
	/** Handler attempts before the message is dead-lettered. */
	maxDeliveries: number;
	/** Also bounds the handler: an attempt that takes longer than 80 % of it counts as failed. */
	ackWaitMs: number;
	/** Delay before redelivery after the n-th failed attempt. */
	retryDelay: (attempt: number) => number;
	/** Messages handled at once by this instance (1 keeps per-instance order). */
	concurrency?: number;
	/** Messages pulled ahead; each waits unacknowledged, so keep prefetch × handler time well under ackWaitMs. */
	prefetch?: number;
	/** Where a consumer created for the first time starts: the whole stream, or only what comes next. */
	deliverPolicy?: "all" | "new";
	log: ConsumerLog;
}

/** Exponential backoff with ±20 % jitter so that failing instances do not retry in lock-step. */
export function exponentialBackoff(baseMs: number, capMs = 60_000): (attempt: number) => number {
	return (attempt) => {
		const raw = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
		return Math.round(raw * (0.8 + Math.random() * 0.4));
	};
}

function oneLine(text: string, max = 1_000): string {
	const flat = text.replace(/[\r\n]+/g, " ").replace(/[^\x20-\x7e]/g, "?");
	return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

function errorText(err: unknown): string {
	return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function isNotFound(err: unknown): boolean {
	return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
}

const decoder = new TextDecoder();
const DLQ_HEADER_PREFIX = "savassan-dlq-";
const rebindDelay = exponentialBackoff(500, 30_000);

export class HandlerTimeoutError extends Error {
	override name = "HandlerTimeoutError";
}

/** A message on its way to the dead-letter stream. */
interface DeadLetterJob {
	m: JsMsg;
	d: Delivery;
	reason: DeadLetterReason;
	error: string;
}

/** Field errors named in a dead letter: enough to act on, cheap to format however wrong the payload is. */
const MAX_FIELD_ERRORS = 10;

function describeProblems(problems: FieldError[]): string {
	const more = problems.length - MAX_FIELD_ERRORS;
	return describeFieldErrors(problems.slice(0, MAX_FIELD_ERRORS)) + (more > 0 ? `; and ${more} more` : "");
}

/**
 * A durable pull consumer that runs a handler per message: ack after success, redelivery with backoff after a
 * failure, and after `maxDeliveries` attempts the message moves to the dead-letter stream with the error and its
 * original headers. Dead-lettering is confirmed by JetStream before the original is acknowledged, so a message
 * is never dropped.
 */
export class DurableConsumer<T = unknown> {
	private messages: ConsumerMessages | undefined;
	private loop: Promise<void> | undefined;
	private stopping = false;
	/** Ends the wait between rebind attempts when stopping. */
	private wake: (() => void) | undefined;
	private readonly inFlight = new Set<Promise<void>>();

	/** Acks of handled messages, sent together once per event-loop turn: one socket write instead of one each. */
	private readonly acks: JsMsg[] = [];
	/** Dead letters of this event-loop turn, likewise published together. */
	private readonly deadLetters: DeadLetterJob[] = [];
	/** Batches of dead letters JetStream has not answered yet: the subscription's end waits for them. */
	private readonly deadLettering = new Set<Promise<void>>();
	private readonly js: JetStreamClient;
	private readonly jsm: JetStreamManager;
	private readonly acked: AckedPublisher;

	constructor(
		jetStream: JetStreamHandles,
		private readonly opts: DurableConsumerOptions<T>,
	) {
		({ js: this.js, jsm: this.jsm, acked: this.acked } = jetStream);
	}

	private ack(m: JsMsg): void {
		if (this.acks.push(m) === 1) setImmediate(this.flushAcks);
	}

	private readonly flushAcks = (): void => {
		for (const m of this.acks.splice(0)) m.ack();
	};

	private config(): Partial<ConsumerConfig> {
		const o = this.opts;
		return {
			durable_name: o.durable,
			description: o.description,
			filter_subject: o.filterSubject,
			ack_policy: AckPolicy.Explicit,
			deliver_policy: o.deliverPolicy === "new" ? DeliverPolicy.New : DeliverPolicy.All,
			ack_wait: nanos(o.ackWaitMs),
			// Unlimited on the server: this class decides when to give up, and always leaves a dead letter.
			max_deliver: -1,
			max_ack_pending: 1_000,
		};
	}

	/** Creates the durable consumer or updates the settings that may change; idempotent across instances. */
	async ensure(): Promise<void> {
		const wanted = this.config();
		let current: ConsumerConfig | undefined;
		try {
			current = (await this.jsm.consumers.info(this.opts.stream, this.opts.durable)).config;
		} catch (err) {
			if (!isNotFound(err)) throw err;
		}
		if (!current) {
			await this.jsm.consumers.add(this.opts.stream, wanted);
			return;
		}
		if (current.filter_subject !== wanted.filter_subject) {
			throw new Error(
				`consumer ${this.opts.durable} on ${this.opts.stream} already filters ${current.filter_subject}, not ${wanted.filter_subject}; delete it to change what it reads`,
			);
		}
		const mutable = ["description", "ack_wait", "max_deliver", "max_ack_pending"] as const;
		if (mutable.some((k) => current[k] !== wanted[k])) {
			await this.jsm.consumers.update(this.opts.stream, this.opts.durable, {
				description: wanted.description,
				ack_wait: wanted.ack_wait,
				max_deliver: wanted.max_deliver,
				max_ack_pending: wanted.max_ack_pending,
			});
		}
	}

	async start(): Promise<void> {
		this.stopping = false;
		await this.ensure();
		this.loop = this.supervise(await this.bind());
	}

	/** Stops pulling, hands back what was prefetched, and waits for the handlers under way. */
	async stop(): Promise<void> {
		if (!this.loop) return;
		this.stopping = true;
		this.wake?.();
		await this.messages?.close();
		await this.loop;
		this.loop = undefined;
	}

	private async bind(): Promise<ConsumerMessages> {
		const consumer = await this.js.consumers.get(this.opts.stream, this.opts.durable);
		// Short pulls: after a consumer leader change (a server lost, a step-down) the pending pull is gone, and the next
		// one would only be sent when this one expires (30 s by default): 5 s bounds the stall.
		const messages = await consumer.consume({ max_messages: Math.max(this.concurrency, this.opts.prefetch ?? 64), expires: 5_000 });
		this.messages = messages;
		void (async () => {
			for await (const s of messages.status()) {
				// After its consumer is deleted (by an operator, a store wipe...) a subscription stops pulling for good.
				if ((s.type === "consumer_deleted" || s.type === "consumer_not_found") && !this.stopping) {
					this.opts.log.warn(`consumer ${this.opts.durable} on ${this.opts.stream} is gone (${s.type}); binding again`);
					messages.stop();
				}
			}
		})().catch(() => undefined);
		return messages;
	}

	private get concurrency(): number {
		return Math.max(1, this.opts.concurrency ?? 1);
	}

	/** Consumes until stop(); a subscription that ends on its own is replaced, recreating the consumer if needed. */
	private async supervise(first: ConsumerMessages): Promise<void> {
		let messages = first;
		for (;;) {
			try {
				await this.run(messages);
			} catch (err) {
				this.opts.log.warn(`consumer ${this.opts.durable}: subscription failed: ${errorText(err)}`);
			}
			for (let attempt = 1; ; attempt++) {
				if (this.stopping) return;
				await new Promise<void>((r) => {
					const timer = setTimeout(r, rebindDelay(attempt));
					this.wake = () => {
						clearTimeout(timer);
						r();
					};
				});
				if (this.stopping) return;
				try {
					await this.ensure();
					messages = await this.bind();
					break;
				} catch (err) {
					this.opts.log.warn(`consumer ${this.opts.durable}: cannot bind yet (${errorText(err)}); retrying`);
				}
			}
		}
	}

	private async run(messages: ConsumerMessages): Promise<void> {
		const { concurrency } = this;
		for await (const m of messages) {
			if (this.stopping) {
				m.nak(); // let another instance take it now rather than after ack_wait
				continue;
			}
			const accepted = this.screen(m);
			if (!accepted) continue;
			const task = this.handle(m, accepted).catch((err) => this.opts.log.error(`consumer ${this.opts.durable}: ${errorText(err)}`));
			if (concurrency === 1) {
				await task;
				continue;
			}
			this.inFlight.add(task);
			void task.finally(() => this.inFlight.delete(task));
			if (this.inFlight.size >= concurrency) await Promise.race(this.inFlight);
		}
		await Promise.all(this.inFlight);
		this.flushDeadLetters();
		await Promise.all(this.deadLettering);
		this.flushAcks();
	}

	private delivery(m: JsMsg): Delivery {
		const h = m.headers;
		const get = (name: string) => h?.get(name) || undefined;
		const version = Number(get(HEADERS.schemaVersion));
		return {
			msgId: get(HEADERS.msgId),
			traceId: get(HEADERS.traceId) ?? randomUUID(),
			deliveryCount: m.info.deliveryCount,
			stream: m.info.stream,
			consumer: this.opts.durable,
			seq: m.seq,
			subject: m.subject,
			publishedAt: m.time,
			schemaVersion: Number.isInteger(version) ? version : undefined,
			header: get,
		};
	}

	/**
	 * What no handler attempt can fix is dead-lettered here, synchronously, before a handler slot or a promise is
	 * spent on it: a flood of bad messages then costs little more than its dead letters. Returns what the handler
	 * needs for the rest.
	 */
	private screen(m: JsMsg): { payload: unknown; d: Delivery } | undefined {
		const d = this.delivery(m);
		let payload: unknown;
		try {
			payload = JSON.parse(decoder.decode(m.data));
		} catch (err) {
			this.deadLetter(m, d, "malformed", `payload is not JSON: ${(err as Error).message}`);
			return undefined;
		}
		const problems = this.opts.validate?.(payload, d) ?? [];
		if (problems.length) {
			const version = d.schemaVersion === undefined ? "" : ` (published as schema v${d.schemaVersion})`;
			this.deadLetter(m, d, "schema", `invalid payload${version}: ${describeProblems(problems)}`);
			return undefined;
		}
		if (d.deliveryCount > this.opts.maxDeliveries) {
			const error = `not acknowledged after ${this.opts.maxDeliveries} deliveries (the handler timed out or its process stopped)`;
			this.deadLetter(m, d, "max-deliveries", error);
			return undefined;
		}
		return { payload, d };
	}

	private async handle(m: JsMsg, { payload, d }: { payload: unknown; d: Delivery }): Promise<void> {
		try {
			// Past the ack wait the server redelivers anyway: at 80 % of it the attempt counts as failed, so the nak or
			// dead letter arrives first and this instance moves on instead of waiting on a handler that may never return.
			const limit = Math.round(this.opts.ackWaitMs * 0.8);
			await deadlines.race(
				Promise.resolve(this.opts.handler(payload as T, d)),
				limit,
				() => new HandlerTimeoutError(`handler did not finish within ${limit} ms`),
			);
			this.ack(m);
		} catch (err) {
			if (d.deliveryCount >= this.opts.maxDeliveries) {
				this.deadLetter(m, d, "handler-failed", errorText(err));
			} else {
				const delay = this.opts.retryDelay(d.deliveryCount);
				this.opts.log.warn(
					`${this.opts.durable}: ${d.subject} #${d.seq} failed (attempt ${d.deliveryCount}/${this.opts.maxDeliveries}, retry in ${delay} ms, trace ${d.traceId}): ${oneLine(errorText(err), 300)}`,
				);
				m.nak(delay);
			}
		}
	}

	/**
	 * Queues the message for the dead-letter stream and returns at once: the turn's dead letters are published
	 * together, and none holds a handler slot while JetStream confirms it.
	 */
	private deadLetter(m: JsMsg, d: Delivery, reason: DeadLetterReason, error: string): void {
		if (this.deadLetters.push({ m, d, reason, error }) === 1) setImmediate(this.flushDeadLetters);
	}

	/** Publishes the queued dead letters in one go; each original is acked once its dead letter is stored. */
	private readonly flushDeadLetters = (): void => {
		const batch = this.deadLetters.splice(0);
		if (!batch.length) return;
		const outcomes = batch.map((job) =>
			this.acked.publish(subjects.deadLetter(job.d.stream, this.opts.durable), job.m.data, this.deadLetterHeaders(job)).then(
				() => {
					this.ack(job.m);
					return undefined;
				},
				(err) => {
					// Not stored: the original stays in its stream and comes back.
					job.m.nak(this.opts.retryDelay(job.d.deliveryCount));
					return errorText(err);
				},
			),
		);
		const settled = Promise.all(outcomes).then((errors) => {
			this.logDeadLetters(batch.filter((_job, i) => errors[i] === undefined));
			const failed = batch.filter((_job, i) => errors[i] !== undefined);
			if (failed.length) {
				const { d } = failed[0]!;
				const others = failed.length > 1 ? ` (and ${failed.length - 1} more)` : "";
				this.opts.log.error(
					`${this.opts.durable}: cannot dead-letter ${d.subject} #${d.seq}${others} (${errors.find((e) => e !== undefined)}); it stays in ${d.stream} and is retried`,
				);
			}
		});
		this.deadLettering.add(settled);
		void settled.finally(() => this.deadLettering.delete(settled));
	};

	private deadLetterHeaders({ m, d, reason, error }: DeadLetterJob): MsgHdrs {
		const h = natsHeaders();
		for (const [k, values] of m.headers ?? []) {
			// Nats-* headers steer the stream that receives them (ids, expectations), and dead-letter headers are this
			// consumer's to write (a producer must not forge a reason): keep both out.
			const lower = k.toLowerCase();
			if (lower.startsWith("nats-") || lower.startsWith(DLQ_HEADER_PREFIX)) continue;
			for (const v of values) h.append(k, v);
		}
		// Appended, not set: none of these can be there already. Only what came from outside needs flattening.
		h.append(DLQ_HEADERS.reason, reason);
		h.append(DLQ_HEADERS.error, oneLine(error));
		h.append(DLQ_HEADERS.stream, d.stream);
		h.append(DLQ_HEADERS.subject, d.subject);
		h.append(DLQ_HEADERS.seq, String(d.seq));
		if (d.msgId) h.append(DLQ_HEADERS.msgId, oneLine(d.msgId));
		h.append(DLQ_HEADERS.consumer, this.opts.durable);
		h.append(DLQ_HEADERS.deliveries, String(d.deliveryCount));
		h.append(DLQ_HEADERS.failedAt, new Date().toISOString());
		if (!m.headers?.get(HEADERS.traceId)) h.append(HEADERS.traceId, d.traceId);
		// The same message dead-lettered twice by this consumer (e.g. after a crash before the ack) is kept once.
		h.append(HEADERS.msgId, `${d.stream}:${d.seq}:${this.opts.durable}`);
		return h;
	}

	/** One line per batch: a flood of bad messages must not become a flood of log lines. */
	private logDeadLetters(stored: DeadLetterJob[]): void {
		const first = stored[0];
		if (!first) return;
		let others = "";
		if (stored.length > 1) {
			const byReason = new Map<DeadLetterReason, number>();
			for (const job of stored) byReason.set(job.reason, (byReason.get(job.reason) ?? 0) + 1);
			others = ` (and ${stored.length - 1} more at once: ${[...byReason].map(([r, n]) => `${r} ${n}`).join(", ")})`;
		}
		const { d } = first;
		this.opts.log.error(
			`${this.opts.durable}: dead-lettered ${d.subject} #${d.seq} after ${d.deliveryCount} deliveries (${first.reason}, trace ${d.traceId}): ${oneLine(first.error, 300)}${others}`,
		);
	}
}
