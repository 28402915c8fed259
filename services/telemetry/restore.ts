import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { TelemetryAlertRaised, TelemetryAlertResolved } from "../../events/catalog";
import { HEADERS } from "../../events/headers";
import { STREAMS } from "../../events/streams";
import { matchesSubject, Telemetry, type Done, type Heartbeat, type RunnerEvent, type TelemetryBase } from "../../events/telemetry";
import type { Validator } from "../../lib/schemas";
import { alertMsgId, type AlertRecord, type AlertTransition } from "./alerts";
import { readStoredMessages } from "../../events/stream-reader";
import { TelemetryTimeError, type TelemetryState } from "./telemetry-state";

/**
 * Start-up: the views live in memory and the TELEMETRY stream (14 days) is their source of truth, so a starting
 * instance replays it into a fresh TelemetryState before its durable consumers are bound. Persisting snapshots
 * would need a second store kept in step with the stream; replaying needs nothing but the stream, and the views'
 * de-duplication (per attempt and kind `seq`) makes the durables' redeliveries of replayed messages harmless.
 * The price is start-up time, which grows with the stream (about 45,000 messages/s here): a fleet that keeps tens of
 * millions of heartbeats in TELEMETRY would want periodic snapshots and a replay of the tail after them.
 *
 * Alerts found again by the replay must not be published again: EVENTS says which were published, and the heartbeat
 * durable's ack floor says which heartbeats were fully handled (their alerts went out before the ack). Only an
 * alert of a heartbeat past the ack floor that EVENTS does not have is published: one that a crash interrupted.
 */

const decoder = new TextDecoder();

/** Highest stream sequence below which every message was acked by the durable (0 if it does not exist yet). */
export async function ackFloor(jsm: JetStreamManager, stream: string, durable: string): Promise<number> {
	try {
		return (await jsm.consumers.info(stream, durable)).ack_floor.stream_seq;
	} catch (err) {
		if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return 0;
		throw err;
	}
}

/** Alert events published since `since`, oldest first, and their message ids. */
export async function readAlertHistory(js: JetStreamClient, since: Date): Promise<{ records: AlertRecord[]; published: Set<string> }> {
	const found: { seq: number; record: AlertRecord }[] = [];
	const published = new Set<string>();
	for (const [state, def] of [
		["raised", TelemetryAlertRaised],
		["resolved", TelemetryAlertResolved],
	] as const) {
		await readStoredMessages(js, STREAMS.events.name, { filter: def.subject, since }, (m) => {
			const id = m.headers?.get(HEADERS.msgId);
			if (id) published.add(id);
			try {
				found.push({ seq: m.seq, record: { state, ...(JSON.parse(decoder.decode(m.data)) as Omit<AlertRecord, "state">) } });
			} catch {
				/* the publisher checks the schema, so not expected; the id still counts as published */
			}
		});
	}
	return { records: found.sort((a, b) => a.seq - b.seq).map((f) => f.record), published };
}

export interface ReplayOptions {
	js: JetStreamClient;
	state: TelemetryState;
	validators: { heartbeat: Validator; event: Validator; done: Validator };
	/** Alerts of heartbeats up to here were published when handled live. */
	handledUpTo: number;
	published: ReadonlySet<string>;
}

export interface ReplayResult {
	applied: number;
	skipped: number;
	/** Alerts a crash kept from being published. */
	unpublished: AlertTransition[];
}

/**
 * Feeds the stored heartbeats, runner events and completions to the state, each kind in stream order (live, the
 * three kinds arrive through separate consumers too). What the durables would refuse (not JSON, invalid, another
 * run's subject) or dead-letter (a time the state refuses) is skipped here as well.
 */
export async function replayTelemetry(o: ReplayOptions): Promise<ReplayResult> {
	const result: ReplayResult = { applied: 0, skipped: 0, unpublished: [] };
	const parse = <T extends TelemetryBase>(m: JsMsg, validate: Validator): T | undefined => {
		let payload: unknown;
		try {
			payload = JSON.parse(decoder.decode(m.data));
		} catch {
			return undefined;
		}
		if (validate(payload).length) return undefined;
		return matchesSubject(m.subject, payload as T) ? (payload as T) : undefined;
	};
	const read = <T extends TelemetryBase>(def: { subject: string }, validate: Validator, apply: (p: T, m: JsMsg) => void) =>
		readStoredMessages(o.js, STREAMS.telemetry.name, { filter: def.subject }, (m) => {
			const p = parse<T>(m, validate);
			if (!p) {
				result.skipped++;
				return;
			}
			try {
				apply(p, m);
				result.applied++;
			} catch (err) {
				if (!(err instanceof TelemetryTimeError)) throw err;
				result.skipped++;
			}
		});

	await read<Heartbeat>(Telemetry.heartbeat, o.validators.heartbeat, (hb, m) => {
		const { alerts } = o.state.heartbeat(hb, m.seq);
		if (m.seq <= o.handledUpTo) return;
		for (const t of alerts) if (!o.published.has(alertMsgId(t))) result.unpublished.push(t);
	});
	await read<RunnerEvent>(Telemetry.event, o.validators.event, (ev) => o.state.event(ev));
	await read<Done>(Telemetry.done, o.validators.done, (d) => o.state.done(d));
	return result;
}
