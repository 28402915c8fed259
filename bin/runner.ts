#!/usr/bin/env node
/**
 * savassan-runner: the sidecar of one run attempt. Wraps the trainer (`runner -- <command...>`, local runtime) or
 * follows it from a shared folder (`runner --attach`, kubernetes), and publishes heartbeat, event, log and done
 * telemetry straight to JetStream with the attempt's own credential. Exits with the trainer's exit code.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { AckedPublisher } from "../events/acked-publisher";
import { subjects } from "../events/subjects";
import type { Artifact } from "../events/telemetry";
import { openBlobStore } from "../lib/blob";
import { credsAuthenticator } from "../lib/nats-auth";
import { RUN_ENV } from "../lib/run-env";
import { CheckpointWatcher } from "../runner/checkpoints";
import { MetricParser } from "../runner/metrics";
import { TelemetryPublisher } from "../runner/publisher";
import { ResourceSampler } from "../runner/resources";
import { attachTrainer, spawnTrainer, type Trainer, type TrainerStream } from "../runner/trainer";

/** Log lines are sent in batches: at most this many lines, or what came within LOG_FLUSH_MS. */
const LOG_BATCH_LINES = 500;
const LOG_FLUSH_MS = 250;

function fail(message: string): never {
	process.stderr.write(`savassan-runner: ${message}\n`);
	process.exit(2);
}

function required(name: string): string {
	const v = process.env[name]?.trim();
	if (!v) fail(`${name} is not set`);
	return v;
}

function say(message: string): void {
	process.stderr.write(`${new Date().toISOString()} savassan-runner: ${message}\n`);
}

/** The trainer's environment: the platform's own variables (credentials, NATS) are not passed on. */
function trainerEnv(): NodeJS.ProcessEnv {
	const env = { ...process.env };
	for (const k of Object.keys(env)) if (k.startsWith("SAVASSAN_")) delete env[k];
	return env;
}

async function main(): Promise<void> {
	const args = process.argv.slice(2);
	const attach = args[0] === "--attach";
	const argv = attach ? [] : args[0] === "--" ? args.slice(1) : args;
	if (!attach && !argv.length) fail("usage: savassan-runner -- <trainer command...>  |  savassan-runner --attach");

	const run = {
		runId: required(RUN_ENV.runId),
		workspace: required(RUN_ENV.workspace),
		attempt: Number(required(RUN_ENV.attempt)),
		traceId: required(RUN_ENV.traceId),
	};
	const heartbeatMs = Number(process.env[RUN_ENV.heartbeatIntervalMs] ?? 5_000);
	const checkpointDir = required(RUN_ENV.checkpointDir);
	const blobs = openBlobStore(required(RUN_ENV.storageUrl));
	let creds: string;
	try {
		creds = readFileSync(required(RUN_ENV.natsCreds), "utf8");
	} catch (err) {
		fail(`cannot read the NATS credentials: ${(err as Error).message}`);
	}

	// Connect in the background: the trainer starts now and telemetry waits in the queue until NATS answers.
	let nc: NatsConnection | undefined;
	const connecting = connect({
		servers: required(RUN_ENV.natsUrl).split(","),
		name: `runner:${run.runId}:${run.attempt}`,
		authenticator: credsAuthenticator(creds),
		inboxPrefix: subjects.inboxOfRun(run.runId),
		waitOnFirstConnect: true,
		maxReconnectAttempts: -1,
		reconnectTimeWait: 500,
	});
	const acked = await connecting.then((c) => {
		nc = c;
		void (async () => {
			for await (const s of c.status()) {
				if (s.type === "disconnect") say(`nats: disconnected from ${s.server}`);
				else if (s.type === "reconnect") say(`nats: reconnected to ${s.server}`);
				else if (s.type === "error") say(`nats: ${s.error.message}`);
			}
		})();
		return new AckedPublisher(c, 5_000, subjects.inboxOfRun(run.runId));
	});
	const out = new TelemetryPublisher(acked, run, { maxQueued: 200_000, log: { warn: say } });

	const trainer: Trainer = attach ? attachTrainer(process.env[RUN_ENV.attachDir] ?? "/var/run/savassan/attach") : spawnTrainer(argv, trainerEnv());
	const startedAt = new Date().toISOString();
	out.send("event", { type: "started" });

	const parser = new MetricParser();
	let logBatch: { stream: TrainerStream; lines: string[] } | undefined;
	let logTimer: NodeJS.Timeout | undefined;
	const flushLogs = () => {
		clearTimeout(logTimer);
		logTimer = undefined;
		if (logBatch) out.send("log", logBatch);
		logBatch = undefined;
	};
	trainer.onLine((stream, line) => {
		if (logBatch && (logBatch.stream !== stream || logBatch.lines.length >= LOG_BATCH_LINES)) flushLogs();
		logBatch ??= { stream, lines: [] };
		logBatch.lines.push(line);
		logTimer ??= setTimeout(flushLogs, LOG_FLUSH_MS);
		const parsed = parser.parse(line);
		if (parsed.epochEnded) out.send("event", { type: "epoch_end", ...parsed.epochEnded });
	});

	const sampler = new ResourceSampler(attach ? { allExceptSelf: true } : { rootPid: trainer.pid ?? process.pid });
	const heartbeat = async () => out.send("heartbeat", { progress: parser.progress(), metrics: parser.latest(), resources: await sampler.sample().catch(() => ({})) });
	const heartbeats = setInterval(() => void heartbeat(), heartbeatMs);
	void heartbeat();

	const watcher = new CheckpointWatcher({
		dir: checkpointDir,
		upload: async (absPath, relPath): Promise<Artifact> => {
			const key = ["runs", run.workspace, run.runId, String(run.attempt), "checkpoints", ...relPath.split(/[\\/]/)].join("/");
			const stored = await blobs.putFile(key, absPath);
			return { ...stored, path: relative(checkpointDir, absPath) };
		},
		onUploaded: (artifact) => out.send("event", { type: "checkpoint_saved", artifact }),
		onError: (err, relPath) => say(`checkpoint ${relPath ?? ""}: ${(err as Error).message}`),
	});
	await watcher.start();

	let stopping = false;
	const stop = (signal: string) => {
		if (stopping) return;
		stopping = true;
		say(`${signal}: stopping the trainer`);
		void trainer.terminate();
	};
	process.on("SIGTERM", () => stop("SIGTERM"));
	process.on("SIGINT", () => stop("SIGINT"));

	const exit = await trainer.exited;
	clearInterval(heartbeats);
	flushLogs();
	await watcher.stop({ flush: true });
	const last = parser.finish();
	if (last) out.send("event", { type: "epoch_end", ...last });
	const succeeded = exit.code === 0;
	out.send("done", {
		status: succeeded ? "succeeded" : "failed",
		exit_code: exit.code,
		signal: exit.signal,
		started_at: startedAt,
		...(succeeded ? {} : { reason: exit.signal ? `trainer killed by ${exit.signal}` : `trainer exited with code ${exit.code}` }),
		...(stopping && !succeeded ? { interrupted: true } : {}),
		metrics: parser.latest(),
		artifacts: watcher.artifacts(),
	});
	const drainMs = Number(process.env.SAVASSAN_DRAIN_TIMEOUT_MS ?? 3_600_000);
	if (!(await out.drain(drainMs))) say(`${out.pending} telemetry messages could not be stored within ${drainMs} ms`);
	acked.close();
	await nc?.drain().catch(() => undefined);
	if (attach) {
		// A native sidecar that exits is restarted by the kubelet: stay until the pod is torn down.
		say("done reported; waiting for the pod to stop");
		await new Promise((resolve) => process.once("SIGTERM", resolve));
		process.exit(0);
	}
	process.exit(exit.code ?? 1);
}

main().catch((err) => {
	say(`failed: ${(err as Error).stack ?? err}`);
	process.exit(1);
});
