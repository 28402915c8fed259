import { defineEvent } from "./definition";

/**
 * Every domain event of the platform. A context adds its events here (with the schema file beside them in
 * `schemas/events/`); the catalog test checks that each one has its schema.
 */

export interface DeadLetterReplayed {
	dead_letter_seq: number;
	stream: string;
	subject: string;
	consumer: string;
	replayed_seq: number;
}

export const DeadLetterReplayed = defineEvent<DeadLetterReplayed>("deadletters", "message", "replayed");

export const EVENT_CATALOG = [DeadLetterReplayed] as const;
