import type { Middleware, ServiceBroker } from "moleculer";
import { defineMiddleware } from "./middleware";
import { Bus, type BusOptions } from "../bus";

export interface ConsumerDefaults {
	maxDeliveries: number;
	ackWaitMs: number;
	retryBaseMs: number;
}

interface Attached {
	bus?: Bus;
	consumerDefaults: ConsumerDefaults;
}

const attached = new WeakMap<ServiceBroker, Attached>();

/**
 * Opens the JetStream side of a broker before its services start (so their `started` handlers can bind consumers)
 * and closes it after they stop.
 */
export function BusMiddleware(opts: Omit<BusOptions, "log"> & { consumerDefaults: ConsumerDefaults }): Middleware {
	return defineMiddleware({
		name: "Bus",
		created(broker: ServiceBroker) {
			attached.set(broker, { consumerDefaults: opts.consumerDefaults });
		},
		async starting(broker: ServiceBroker) {
			const log = broker.getLogger("bus");
			attached.get(broker)!.bus = await Bus.connect({ ...opts, log });
		},
		async stopped(broker: ServiceBroker) {
			const state = attached.get(broker);
			await state?.bus?.close();
			if (state) state.bus = undefined;
		},
	});
}

function state(broker: ServiceBroker): Attached {
	const s = attached.get(broker);
	if (!s) throw new Error("this broker has no BusMiddleware: add it to the broker's middlewares");
	return s;
}

/** The bus of a started broker. */
export function busOf(broker: ServiceBroker): Bus {
	const bus = state(broker).bus;
	if (!bus) throw new Error("the bus is not connected (the broker is not started, or is stopping)");
	return bus;
}

export function consumerDefaultsOf(broker: ServiceBroker): ConsumerDefaults {
	return state(broker).consumerDefaults;
}
