import { headers as natsHeaders } from "@nats-io/transport-node";
import { randomUUID } from "node:crypto";
import { describeFieldErrors, type FieldError, type SchemaRegistry } from "../lib/schemas";
import type { AckedPublisher } from "./acked-publisher";
import type { EventDefinition } from "./definition";
import { HEADERS } from "./headers";

export class EventValidationError extends Error {
	override name = "EventValidationError";
	readonly code = "EVENT_INVALID";
	constructor(
		readonly eventType: string,
		readonly fields: FieldError[],
	) {
		super(`invalid payload for event ${eventType}: ${describeFieldErrors(fields)}`);
	}
}

export interface PublishOptions {
	/**
	 * De-duplication key. Derive it from the domain (`<run id>:started`) so a retried publish is stored once;
	 * a random one is used when absent.
	 */
	msgId?: string;
	traceId?: string;
}

export interface Published {
	stream: string;
	seq: number;
	/** True when the stream already held this message id: nothing new was stored. */
	duplicate: boolean;
	msgId: string;
	traceId: string;
}

const HEADER_VALUE = /^[\x21-\x7e][\x20-\x7e]{0,255}$/;

function headerValue(name: string, value: string): string {
	if (!HEADER_VALUE.test(value)) throw new Error(`${name} must be 1-256 printable ASCII characters, got ${JSON.stringify(value)}`);
	return value;
}

/** Publishes domain events to JetStream after checking them against their schema. */
export class EventPublisher {
	constructor(
		private readonly acked: AckedPublisher,
		private readonly schemas: SchemaRegistry,
	) {}

	/** Throws EventValidationError naming each bad field. */
	validate<T>(def: EventDefinition<T>, payload: unknown): asserts payload is T {
		const problems = this.schemas.validator(def.schemaId)(payload);
		if (problems.length) throw new EventValidationError(def.type, problems);
	}

	async publish<T>(def: EventDefinition<T>, payload: T, opts: PublishOptions = {}): Promise<Published> {
		this.validate(def, payload);
		const msgId = headerValue("msgId", opts.msgId ?? randomUUID());
		const traceId = headerValue("traceId", opts.traceId ?? randomUUID());
		const h = natsHeaders();
		h.set(HEADERS.msgId, msgId);
		h.set(HEADERS.traceId, traceId);
		h.set(HEADERS.eventType, def.type);
		h.set(HEADERS.schemaVersion, String(def.version));
		const ack = await this.acked.publish(def.subject, JSON.stringify(payload), h);
		return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate, msgId, traceId };
	}
}
