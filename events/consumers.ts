import type { EventDefinition } from "./definition";
import { token } from "./subjects";

/**
 * A durable consumer: one service reading one event type. Every instance of the service binds to the same
 * durable, so instances share the work instead of each receiving everything.
 */
export interface ConsumerDefinition<T = unknown> {
	readonly service: string;
	readonly event: EventDefinition<T>;
	/** `<service>__<context>_<entity>_<verb>` */
	readonly durable: string;
	/** Where the consumer starts the first time it is created: the whole stream, or only what comes next. */
	readonly deliverPolicy: "all" | "new";
}

/** `service` is the Moleculer service's full name (`v2.catalog` becomes `v2_catalog`). */
export function defineConsumer<T>(
	service: string,
	event: EventDefinition<T>,
	opts: { deliverPolicy?: "all" | "new" } = {},
): ConsumerDefinition<T> {
	const durable = `${token("service", service.replace(/\./g, "_"))}__${event.type.replace(/\./g, "_")}`;
	return { service, event, durable, deliverPolicy: opts.deliverPolicy ?? "all" };
}
