import { Context, type Middleware, type Service, type ServiceSchema } from "moleculer";
import type { ConsumerDefinition } from "../../events/consumers";
import { DurableConsumer, exponentialBackoff, type Delivery } from "../../events/consume";
import type { EventDefinition } from "../../events/definition";
import type { Published, PublishOptions } from "../../events/publish";
import { busOf, consumerDefaultsOf } from "./bus.middleware";
import { defineMiddleware } from "./middleware";

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

/** Gives a service `publishEvent`; its `durableEvents` are bound by DurableEventsMiddleware. */
export const DurableEventsMixin: Partial<ServiceSchema> = {
	methods: {
		/** Publishes a domain event with schema check, de-duplication id and trace id. */
		publishEvent<T>(this: Service, def: EventDefinition<T>, payload: T, opts?: PublishOptions): Promise<Published> {
			return busOf(this.broker).publisher.publish(def, payload, opts);
		},
	},
};

/**
 * Binds each `durableEvents` entry of a service, `durableEvents: [onEvent(SomeConsumer, handler)]`, as a durable
 * pull consumer once the service has started — after all of its own `started` handlers, so a handler never meets
 * a half-initialised service — and drains them before its `stopped` handlers run. The handler gets a Moleculer
 * context whose requestID is the event's trace id (calls it makes carry the trace on) and the delivery (message
 * id, delivery count...). Handlers must be idempotent: a message is redelivered if its handler throws or its
 * process dies before the ack.
 */
export function DurableEventsMiddleware(): Middleware {
	return defineMiddleware({
		name: "DurableEvents",
		serviceStarted: (service: WithConsumers) => bind(service),
		serviceStopping: (service: WithConsumers) => unbind(service),
	});
}

async function bind(service: WithConsumers): Promise<void> {
	const subscriptions = (service.schema.durableEvents ?? []) as DurableSubscription[];
	if (!subscriptions.length) return;
	const bus = busOf(service.broker);
	const defaults = consumerDefaultsOf(service.broker);
	service.$durableConsumers = [];
	for (const sub of subscriptions) {
		const { consumer: def } = sub;
		if (def.service !== service.fullName) {
			throw new Error(`service ${service.fullName} subscribes with consumer ${def.durable}, which is declared for ${def.service}`);
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
			log: service.logger,
			handler: (payload, delivery) => {
				const ctx = Context.create(service.broker, null as never, payload as object, { requestID: delivery.traceId });
				ctx.eventName = def.event.type;
				return sub.handler.call(service, ctx as Context<never>, delivery);
			},
		});
		await consumer.start();
		service.$durableConsumers.push(consumer);
	}
}

async function unbind(service: WithConsumers): Promise<void> {
	await Promise.all((service.$durableConsumers ?? []).map((c) => c.stop()));
	service.$durableConsumers = [];
}
