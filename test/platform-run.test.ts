import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { PROJECT_ROOT } from "../lib/paths";
import { startPlatform, type Platform } from "../lib/platform";
import type { Run } from "../services/execution/run";
import type { ProgressView } from "../services/telemetry/progress";
import { testConfig } from "./support/broker";
import { processesMentioning } from "./support/cli";
import { waitFor } from "./support/wait";

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe("the platform as `npm start` composes it", () => {
	const dir = mkdtempSync(join(tmpdir(), "savassan-platform-"));
	let platform: Platform | undefined;

	after(async () => {
		await platform?.stop();
		rmSync(dir, { recursive: true, force: true });
	});

	it("runs a training run end to end on the embedded defaults: operator-mode NATS, local runtime, telemetry", async () => {
		platform = await startPlatform(testConfig({ DATA_DIR: dir, GATEWAY_PORT: "0", RUN_HEARTBEAT_INTERVAL_MS: "300" }), quiet);
		const { broker } = platform;
		const trainer = [process.execPath, join(PROJECT_ROOT, "examples", "trainer.js"), "--epochs", "2", "--steps", "3", "--step-ms", "60"];
		const run = await broker.call<Run, object>("execution.submit", { workspace: "demo", command: trainer });
		let last: Run | undefined;
		await waitFor("the run to succeed", async () => (last = await broker.call<Run, object>("execution.get", { id: run.id })).status === "SUCCEEDED", 30_000);
		assert.equal(last!.artifacts.length, 2);
		assert.ok(last!.artifacts.every((a) => a.uri.startsWith(`file://${join(dir, "blobs")}`)), "checkpoints in the embedded blob store");
		let progress: ProgressView | undefined;
		await waitFor("telemetry to see the end", async () => {
			progress = await broker.call<ProgressView, object>("telemetry.progress", { run_id: run.id }).catch(() => undefined);
			return progress?.status === "done";
		});
		assert.equal(progress!.result, "succeeded");
		assert.equal(progress!.epochs, 2);
		assert.ok(progress!.heartbeats >= 1);
		await platform.stop();
		platform = undefined;
		assert.deepEqual(processesMentioning(dir), [], "nothing left running: no nats-server, no runner");
	});
});
