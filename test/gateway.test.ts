import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ACTION_MAP, PUBLIC_ACTIONS } from "../services/authz/action-map";
import { readiness } from "../services/gateway/health";
import { EDGE_ROUTES } from "../services/gateway/routes";

describe("gateway readiness", () => {
	it("is ready only with the bus connected, and groups nodes by service", () => {
		const services = [
			{ name: "deadletters", nodeID: "b" },
			{ name: "gateway", nodeID: "a" },
			{ name: "deadletters", nodeID: "a" },
		];
		assert.deepEqual(readiness({ node: "a", busConnected: true, services }), {
			status: "ready",
			node: "a",
			bus: "connected",
			services: { deadletters: ["a", "b"], gateway: ["a"] },
		});
		const down = readiness({ node: "a", busConnected: false, services: [] });
		assert.equal(down.status, "not-ready");
		assert.equal(down.bus, "disconnected");
	});
});

describe("edge routes", () => {
	it("expose every action an edge caller may call, and only those, each once per method and path", () => {
		const callable = [...Object.keys(ACTION_MAP), ...PUBLIC_ACTIONS].sort();
		assert.deepEqual([...new Set(EDGE_ROUTES.map((r) => r.action))].sort(), callable);
		const places = EDGE_ROUTES.map((r) => `${r.method} ${r.path}`);
		assert.equal(new Set(places).size, places.length, "no method and path twice");
	});
});
