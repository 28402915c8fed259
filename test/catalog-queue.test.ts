import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { KeyedQueue } from "../services/catalog/keyed-queue";

/** The per-run ordering the catalog relies on when it handles several runs' events at once. */
describe("keyed queue", () => {
	it("runs one key's tasks in order, one at a time, other keys alongside; a failure does not block the key", async () => {
		const q = new KeyedQueue();
		const log: string[] = [];
		const task = (name: string, ms: number, fail = false) => async () => {
			log.push(`${name}>`);
			await sleep(ms);
			log.push(`<${name}`);
			if (fail) throw new Error(`${name} failed`);
			return name;
		};
		const results = Promise.allSettled([q.run("a", task("a1", 30, true)), q.run("a", task("a2", 1)), q.run("b", task("b1", 5))]);
		assert.deepEqual((await results).map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message)), ["a1 failed", "a2", "b1"]);
		assert.deepEqual(log, ["a1>", "b1>", "<b1", "<a1", "a2>", "<a2"]);
		await sleep(0);
		assert.equal((q as unknown as { tails: Map<string, unknown> }).tails.size, 0, "idle keys are forgotten");
	});
});
