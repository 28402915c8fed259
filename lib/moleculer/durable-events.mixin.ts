import { Context, type Service, type ServiceSchema } from "moleculer";
import type { ConsumerDefinition } from "../../events/consumers";
import { DurableConsumer, exponentialBackoff, type Delivery } from "../../events/consume";
import type { EventDefinition } from "../../events/definition";
import type { Published, PublishOptions } from "../../events/publish";
import { busOf, consumerDefaultsOf } from "./bus.middleware";

/** `S` is the service's own `this` type (its methods and state). */
export type DurableEventHandler<T, S extends Service = Service> = (this: S, ctx: Context<T>, delivery: Delivery) => Promise<void> | void;

export interface DurableSubscription<T = unknown> {
	consumer: ConsumerDefinition<T>;
	handler: DurableEventHandler<T>;
	/** Messages handled at once by each instance (default 1: in order per instance). */
	concurrency?: number;
	prefetch?: number;
	maxDeliveries?: number;
	ackWaitMs?: number;
	retryBaseMs?: number;
}

/** Typed declaration of one subscription for a service's `durableEvents` list. */
export function onEvent<T, S extends Service = Service>(
	consumer: ConsumerDefinition<T>,
	handler: DurableEventHandler<T, S>,
	options: Omit<DurableSubscription<T>, "consumer" | "handler"> = {},
): DurableSubscription<T> {
	return { consumer, handler: handler as DurableEventHandler<T>, ...options };
}

interface WithConsumers extends Service {
	$durableConsumers?: DurableConsumer[];
}

/**
 * Lets a service declare `durableEvents: [onEvent(SomeConsumer, handler)]`. Each becomes a durable pull consumer
 * bound when the service starts and drained when it stops. The handler gets a Moleculer context whose requestID
 * is the event's trace id (calls it makes carry the trace on) and the delivery (message id, delivery count...).
 * Handlers must be idempotent: a message is redelivered if its handler throws or its process dies before the ack.
 */
export const DurableEventsMixin: Partial<ServiceSchema> = {
	methods: {
		/** Publishes a domain event with schema check, de-duplication id and trace id. */
		publishEvent<T>(this: Service, def: EventDefinition<T>, payload: T, opts?: PublishOptions): Promise<Published> {
			return busOf(this.broker).publisher.publish(def, payload, opts);
		},
	},

	async started(this: WithConsumers) {
		const subscriptions = (this.schema.durableEvents ?? []) as DurableSubscription[];
		const bus = busOf(this.broker);
		const defaults = consumerDefaultsOf(this.broker);
		this.$durableConsumers = [];
		for (const sub of subscriptions) {
			const { consumer: def } = sub;
			if (def.service !== this.fullName) {
				throw new Error(`service ${this.fullName} subscribes with consumer ${def.durable}, which is declared for ${def.service}`);
			}
			const consumer = new DurableConsumer(bus, {
				stream: def.event.stream,
				durable: def.durable,
				filterSubject: def.event.subject,
				description: `${def.service} reacting to ${def.event.type}`,
				validate: bus.schemas.validator(def.event.schemaId),
				deliverPolicy: def.deliverPolicy,
				maxDeliveries: sub.maxDeliveries ?? defaults.maxDeliveries,
				ackWaitMs: sub.ackWaitMs ?? defaults.ackWaitMs,
				retryDelay: exponentialBackoff(sub.retryBaseMs ?? defaults.retryBaseMs),
				concurrency: sub.concurrency,
				prefetch: sub.prefetch,
				log: this.logger,
				handler: (payload, delivery) => {
					const ctx = Context.create(this.broker, null as never, payload as object, { requestID: delivery.traceId });
					ctx.eventName = def.event.type;
					return sub.handler.call(this, ctx as Context<never>, delivery);
				},
			});
			await consumer.start();
			this.$durableConsumers.push(consumer);
		}
	},

	async stopped(this: WithConsumers) {
		await Promise.all((this.$durableConsumers ?? []).map((c) => c.stop()));
		this.$durableConsumers = [];
	},
};
