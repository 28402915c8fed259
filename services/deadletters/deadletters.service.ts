import { Errors, type Context, type Service, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import { DeadLetterReplayed } from "../../events/catalog";
import type { EventDefinition } from "../../events/definition";
import type { Published, PublishOptions } from "../../events/publish";
import { busOf } from "../../lib/moleculer/bus.middleware";
import { DurableEventsMixin } from "../../lib/moleculer/durable-events.mixin";
import { DeadLetterStore, type ListQuery } from "./dead-letter-store";

interface DeadLettersThis extends Service {
	store: DeadLetterStore;
	publishEvent<T>(def: EventDefinition<T>, payload: T, opts?: PublishOptions): Promise<Published>;
}

function notFound(seq: number): Errors.MoleculerClientError {
	return new Errors.MoleculerClientError(`no dead letter with seq ${seq}`, 404, "NOT_FOUND", { seq });
}

/** Inspect and replay what durable consumers gave up on. */
export function deadLettersService(): ServiceSchema<ServiceSettingSchema, DeadLettersThis> {
	return {
		name: "deadletters",
		mixins: [DurableEventsMixin],
		actions: {
			list(this: DeadLettersThis, ctx: Context<ListQuery>) {
				return this.store.list(ctx.params);
			},
			async get(this: DeadLettersThis, ctx: Context<{ seq: number }>) {
				const letter = await this.store.get(ctx.params.seq);
				if (!letter) throw notFound(ctx.params.seq);
				return letter;
			},
			stats(this: DeadLettersThis) {
				return this.store.stats();
			},
			async replay(this: DeadLettersThis, ctx: Context<{ seq: number }>) {
				const letter = await this.store.get(ctx.params.seq);
				if (!letter) throw notFound(ctx.params.seq);
				if (!letter.original.subject) {
					throw new Errors.MoleculerClientError(`dead letter ${letter.seq} does not say where it came from`, 409, "NOT_REPLAYABLE");
				}
				const traceId = ctx.requestID!;
				const replayedSeq = await this.store.replay(letter, traceId);
				await this.publishEvent(
					DeadLetterReplayed,
					{
						dead_letter_seq: letter.seq,
						stream: letter.original.stream,
						subject: letter.original.subject,
						consumer: letter.consumer,
						replayed_seq: replayedSeq,
					},
					{ msgId: `deadletters:replayed:${letter.seq}`, traceId },
				);
				return { seq: letter.seq, replayed_seq: replayedSeq, subject: letter.original.subject };
			},
		},
		started(this: DeadLettersThis) {
			const bus = busOf(this.broker);
			this.store = new DeadLetterStore(bus.acked, bus.jsm);
		},
	};
}
