import { SCHEMA_BASE_URI } from "../lib/schemas";
import { STREAMS } from "./streams";
import { subjects, token } from "./subjects";

/**
 * A domain event contract: `evt.<context>.<entity>.<verb>` on the EVENTS stream, its payload described by
 * `schemas/events/<context>.<entity>.<verb>.v<version>.json`. `T` is the payload's TypeScript shape.
 */
export interface EventDefinition<T = unknown> {
	/** `<context>.<entity>.<verb>` */
	readonly type: string;
	readonly context: string;
	/** The entity of a domain event (telemetry definitions have none). */
	readonly entity?: string;
	readonly subject: string;
	readonly stream: string;
	readonly version: number;
	readonly schemaId: string;
	/** Carries `T` for inference only; never set. */
	readonly payload?: T;
}

export function defineEvent<T>(context: string, entity: string, verb: string, version = 1): EventDefinition<T> {
	const type = `${token("context", context)}.${token("entity", entity)}.${token("verb", verb)}`;
	if (!Number.isInteger(version) || version < 1) throw new Error(`event ${type}: version must be a positive integer`);
	return {
		type,
		context,
		entity,
		subject: subjects.domain(context, entity, verb),
		stream: STREAMS.events.name,
		version,
		schemaId: `${SCHEMA_BASE_URI}events/${type}.v${version}.json`,
	};
}
