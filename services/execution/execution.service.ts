import { Errors, type Context, type Service, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RunTransitioned } from "../../events/catalog";
import { defineConsumer } from "../../events/consumers";
import type { EventDefinition } from "../../events/definition";
import type { Published, PublishOptions } from "../../events/publish";
import { STREAMS } from "../../events/streams";
import { lastOnSubject, readAfter } from "../../events/stream-reader";
import { subjects } from "../../events/subjects";
import { matchesSubject, Telemetry, type Done, type LogBatch, type RunnerEvent } from "../../events/telemetry";
import type { PlatformConfig } from "../../lib/config";
import type { EdgeMeta } from "../../lib/moleculer/authz.middleware";
import { busOf } from "../../lib/moleculer/bus.middleware";
import { DurableEventsMixin, onEvent } from "../../lib/moleculer/durable-events.mixin";
import { NatsAuthority } from "../../lib/nats-auth";
import type { ServiceContext } from "../index";
import { ExecutionController, RequestConflictError, RunNotFoundError } from "./controller";
import type { Run, RunRequest, Transition } from "./run";
import { IllegalTransitionError } from "./run-state";
import { RunStore, type RunQuery } from "./run-store";
import { KubernetesRuntime } from "./runtime/kubernetes";
import { LocalRuntime } from "./runtime/local";
import type { RuntimePort } from "./runtime/runtime";

interface ExecutionThis extends Service {
	publishEvent<T>(def: EventDefinition<T>, payload: T, opts?: PublishOptions): Promise<Published>;
	controller: ExecutionController;
	store: RunStore;
	runtime: RuntimePort;
	stopObserving?: () => Promise<void>;
	sweeper?: NodeJS.Timeout;
	sweeping?: Promise<void>;
}

const SERVICE = "execution";
const RunnerEvents = defineConsumer(SERVICE, Telemetry.event);
const RunnerDone = defineConsumer(SERVICE, Telemetry.done);

/** Domain errors as client errors with their HTTP status. */
function clientError(err: unknown): never {
	if (err instanceof RunNotFoundError) throw new Errors.MoleculerClientError(err.message, 404, "NOT_FOUND", { id: err.runId });
	if (err instanceof IllegalTransitionError) {
		throw new Errors.MoleculerClientError(err.message, 409, "ILLEGAL_TRANSITION", { id: err.runId, from: err.from, to: err.to });
	}
	if (err instanceof RequestConflictError) throw new Errors.MoleculerClientError(err.message, 409, "REQUEST_ID_REUSED");
	throw err;
}

/** A transition as its event carries it (whether it is published is the outbox's business). */
function event(t: Transition): Omit<Transition, "published"> {
	const { published: _published, ...rest } = t;
	return rest;
}

/** The run without its history: what events and lists carry. */
function summary(run: Run): Record<string, unknown> {
	const { history: _history, env: _env, ...rest } = run;
	return rest;
}

async function createRuntime(config: PlatformConfig, log: Service["logger"]): Promise<RuntimePort> {
	const ex = config.execution;
	if (ex.runtime === "kubernetes") {
		return KubernetesRuntime.create({ namespace: ex.k8sNamespace, sidecarImage: ex.k8sSidecarImage, log });
	}
	return new LocalRuntime({ dir: join(config.dataDir, "runs"), log });
}

/** Runs: submit, observe, cancel, retry; the state machine driven by runner telemetry and the watchdog. */
export function executionService(config: PlatformConfig, ctx: ServiceContext): ServiceSchema<ServiceSettingSchema, ExecutionThis> {
	const ex = config.execution;
	return {
		name: SERVICE,
		mixins: [DurableEventsMixin],
		actions: {
			async submit(this: ExecutionThis, c: Context<RunRequest, EdgeMeta>) {
				return this.controller.submit(c.params, c.requestID!, c.meta.principal).catch(clientError);
			},
			async get(this: ExecutionThis, c: Context<{ id: string }>) {
				return this.controller.get(c.params.id).catch(clientError);
			},
			list(this: ExecutionThis, c: Context<RunQuery>) {
				const page = this.store.list(c.params);
				return { ...page, items: page.items.map(summary) };
			},
			async cancel(this: ExecutionThis, c: Context<{ id: string; reason?: string }>) {
				return this.controller.cancel(c.params.id, c.params.reason).catch(clientError);
			},
			async retry(this: ExecutionThis, c: Context<{ id: string }>) {
				return this.controller.retry(c.params.id).catch(clientError);
			},
			async logs(this: ExecutionThis, c: Context<{ id: string; attempt?: number; after: number; limit: number }>) {
				const run = await this.controller.get(c.params.id).catch(clientError);
				const attempt = c.params.attempt ?? run.attempt;
				const { jsm } = busOf(this.broker);
				const subject = subjects.telemetry(run.workspace, run.id, "log");
				const lines: { seq: number; at: string; stream: string; line: string }[] = [];
				let after = c.params.after;
				// Batches hold up to 1,000 lines: read batch by batch until the page is full.
				for (;;) {
					const { messages, next } = await readAfter(jsm, STREAMS.telemetry.name, subject, after, 1);
					const m = messages[0];
					if (!m) break;
					const batch = m.json<LogBatch>();
					if (batch.attempt === attempt) for (const line of batch.lines) lines.push({ seq: m.seq, at: batch.at, stream: batch.stream, line });
					after = m.seq;
					if (lines.length >= c.params.limit || next === null) break;
				}
				return { run_id: run.id, attempt, lines, next: after };
			},
		},
		durableEvents: [
			onEvent(RunnerEvents, async function (this: ExecutionThis, c, d) {
				const e = c.params as RunnerEvent;
				if (!matchesSubject(d.subject, e)) return this.logger.warn(`runner event on ${d.subject} names another run: ignored`);
				await this.controller.onRunnerEvent(e);
			}),
			onEvent(RunnerDone, async function (this: ExecutionThis, c, d) {
				const done = c.params as Done;
				if (!matchesSubject(d.subject, done)) return this.logger.warn(`done on ${d.subject} names another run: ignored`);
				await this.controller.onDone(done);
			}),
		],
		async started(this: ExecutionThis) {
			const bus = busOf(this.broker);
			this.store = await RunStore.open(bus.js, config.streamReplicas);
			this.runtime = await createRuntime(config, this.logger);
			const authority = existsSync(config.natsAuthorityFile) ? NatsAuthority.load(config.natsAuthorityFile) : undefined;
			if (!authority) this.logger.warn(`no NATS authority at ${config.natsAuthorityFile}: runs cannot get credentials and will fail to start`);
			this.controller = new ExecutionController({
				store: this.store,
				runtime: this.runtime,
				publish: async (run, t) => {
					await this.publishEvent(
						RunTransitioned,
						{ run_id: run.id, workspace: run.workspace, ...event(t), run: summary(run) },
						{ msgId: `${run.id}:${t.attempt}:${t.to}`, traceId: run.trace_id },
					);
				},
				credentials: async (run) => {
					if (!authority) throw new Error(`run credentials are not configured (no NATS authority at ${config.natsAuthorityFile}; set NATS_AUTHORITY)`);
					const { creds } = await authority.runCreds({ workspace: run.workspace, runId: run.id, attempt: run.attempt, ttlSec: ex.credentialTtlSec });
					return creds;
				},
				busUpSince: () => bus.connectedSince,
				lastHeartbeat: async (run) => {
					const m = await lastOnSubject(bus.jsm, STREAMS.telemetry.name, subjects.telemetry(run.workspace, run.id, "heartbeat"));
					return m && m.json<{ attempt?: number }>().attempt === run.attempt ? m.time : undefined;
				},
				// Every server, so a sidecar keeps reporting while one of a cluster is down.
				sidecar: { natsUrl: ex.sidecarNatsUrl ?? ctx.nats.servers.join(","), storageUrl: ex.storageUrl },
				defaults: { image: ex.defaultImage, maxRetries: ex.maxRetries, timeoutSec: ex.timeoutSec, heartbeatIntervalMs: ex.heartbeatIntervalMs },
				startTimeoutMs: ex.startTimeoutMs,
				log: this.logger,
			});
			this.stopObserving = await this.runtime.observe((o) => void this.controller.onObservation(o).catch((err) => this.logger.error(err)));
			await this.controller.reconcile();
			const tick = Math.max(100, Math.min(1_000, Math.floor(ex.heartbeatIntervalMs / 2)));
			this.sweeper = setInterval(() => {
				this.sweeping ??= this.controller
					.sweep()
					.catch((err) => this.logger.warn(`watchdog: ${(err as Error).message}`))
					.finally(() => (this.sweeping = undefined));
			}, tick);
		},
		async stopped(this: ExecutionThis) {
			clearInterval(this.sweeper);
			await this.sweeping;
			await this.stopObserving?.();
			await this.runtime?.close();
			this.store?.close();
		},
	};
}
