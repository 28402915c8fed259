/** Readiness of one node as its gateway reports it: the bus must be up for anything to work. */
export interface Readiness {
	status: "ready" | "not-ready";
	node: string;
	bus: "connected" | "disconnected";
	/** Service name → nodes that offer it right now. */
	services: Record<string, string[]>;
}

export function readiness(input: {
	node: string;
	busConnected: boolean;
	services: { name: string; nodeID: string }[];
}): Readiness {
	const services: Record<string, string[]> = {};
	for (const s of input.services) (services[s.name] ??= []).push(s.nodeID);
	for (const nodes of Object.values(services)) nodes.sort();
	return {
		status: input.busConnected ? "ready" : "not-ready",
		node: input.node,
		bus: input.busConnected ? "connected" : "disconnected",
		services,
	};
}
