import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readiness } from "../services/gateway/health";

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
