import type { ServiceBroker, ServiceSchema } from "moleculer";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startBroker } from "./support/broker";
import { startTestNats, type TestNats } from "./support/nats";
import { waitFor } from "./support/wait";

const widgets: ServiceSchema = {
	name: "widgets",
	actions: {
		create: (ctx) => ({ received: ctx.params, servedBy: ctx.broker.nodeID }),
	},
};

describe("action params validation (JSON Schema, over the transporter)", () => {
	let nats: TestNats;
	let server: ServiceBroker;
	let client: ServiceBroker;

	before(async () => {
		nats = await startTestNats();
		server = await startBroker(nats.url, "server", [widgets]);
		client = await startBroker(nats.url, "client", []);
		await waitFor("the client to see widgets", () => client.registry.getServiceList({ onlyAvailable: true }).some((s) => s.name === "widgets"));
	});

	after(async () => {
		await client?.stop();
		await server?.stop();
		await nats?.stop();
	});

	it("passes valid params from another node, with declared defaults filled", async () => {
		const res = await client.call<{ received: unknown; servedBy: string }, object>("widgets.create", { name: "bolt" });
		assert.equal(res.servedBy, "server");
		assert.deepEqual(res.received, { name: "bolt", spec: { size: 3 } });
	});

	it("returns a 422 ValidationError naming each bad field", async () => {
		await assert.rejects(client.call("widgets.create", { spec: { size: "big" }, colour: "red" }), (err: any) => {
			assert.equal(err.name, "ValidationError");
			assert.equal(err.code, 422);
			assert.equal(err.type, "INVALID_PARAMS");
			assert.equal(err.message, "invalid params for widgets.create: 'name' is required; 'colour' is not allowed; 'spec.size' must be integer");
			assert.deepEqual(
				err.data.fields.map((f: { field: string }) => f.field),
				["name", "colour", "spec.size"],
			);
			assert.equal(err.data.action, "widgets.create");
			return true;
		});
	});

	it("treats missing params as an empty object, not a crash", async () => {
		await assert.rejects(client.call("widgets.create"), { code: 422, message: "invalid params for widgets.create: 'name' is required" });
	});

	it("refuses to start a service with an action that has no schema (deny by default)", async () => {
		const unchecked: ServiceSchema = { name: "widgets", actions: { destroy: () => "gone" } };
		await assert.rejects(startBroker(nats.url, "unchecked", [unchecked]), {
			message: "action widgets.destroy has no params schema: add schemas/actions/widgets.destroy.json",
		});
	});
});
