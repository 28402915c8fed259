import type { Done, RunnerEvent } from "../../events/telemetry";
import { requestScopedId } from "../../lib/ids";
import { newRun, sameRequest, type Run, type RunDefaults, type RunRequest, type Transition } from "./run";
import * as machine from "./run-state";
import type { RunStore } from "./run-store";
import { RuntimeError, type RuntimePort, type WorkloadObservation } from "./runtime/runtime";

/**
 * The execution context's application logic: the run store, the state machine, the runtime and the liveness
 * watchdog put together. It knows nothing of Moleculer; the bus comes in as the functions of ControllerDeps.
 */

export interface ControllerLog {
	info(msg: string): void;
	warn(msg: string): void;
	error(msg: string): void;
}

export interface ControllerDeps {
	store: RunStore;
	runtime: RuntimePort;
	/** Stores the transition's domain event (idempotent per run, attempt and status). */
	publish(run: Run, t: Transition): Promise<void>;
	/** A credential for the attempt's sidecar; throws when runs cannot get one (no authority configured). */
	credentials(run: Run): Promise<string>;
	/**
	 * Since when this controller's bus connection is up (epoch ms), undefined while it is down: silence while the
	 * bus was away says nothing about a run, so it is not held against it.
	 */
	busUpSince(): number | undefined;
	/** When the current attempt's sidecar last sent a heartbeat, if it did. */
	lastHeartbeat(run: Run): Promise<Date | undefined>;
	sidecar: { natsUrl: string; storageUrl: string };
	defaults: RunDefaults;
	/** A QUEUED attempt whose trainer has not started by then has failed to start. */
	startTimeoutMs: number;
	log: ControllerLog;
	now?: () => Date;
}

export class RunNotFoundError extends Error {
	override name = "RunNotFoundError";
	constructor(readonly runId: string) {
		super(`no run with id ${runId}`);
	}
}

export class RequestConflictError extends Error {
	override name = "RequestConflictError";
}

/** Heartbeats missed before an attempt counts as lost. */
export const LOST_AFTER_INTERVALS = 3;
/** After the bus comes back, sidecars need time to reconnect too (they retry every 0.5 s). */
export const RECONNECT_GRACE_MS = 5_000;

/** Same workspace and request id → same run id, so a retried submit finds the first one. */
export function runIdFor(req: RunRequest): string {
	return requestScopedId("run", req.workspace, req.request_id);
}

function describe(err: unknown): string {
	return err instanceof Error ? err.message : String(err);
}

export class ExecutionController {
	private readonly now: () => Date;
	/** Last heartbeat time seen per running attempt (`<run>:<attempt>`), epoch ms. */
	private readonly heard = new Map<string, number>();

	constructor(private readonly deps: ControllerDeps) {
		this.now = deps.now ?? (() => new Date());
	}

	async get(id: string): Promise<Run> {
		const run = await this.deps.store.get(id);
		if (!run) throw new RunNotFoundError(id);
		return run;
	}

	/** `owner`: the authenticated user submitting it, if any (Editors may then cancel and retry it). */
	async submit(req: RunRequest, traceId: string, owner?: string): Promise<Run> {
		const id = runIdFor(req);
		const { run, created } = await this.deps.store.create(newRun(id, req, this.deps.defaults, traceId, this.now(), owner));
		if (!created) {
			if (!sameRequest(run, req)) {
				throw new RequestConflictError(`request_id ${req.request_id} was already used for run ${run.id} with different parameters`);
			}
			return run;
		}
		this.deps.log.info(`run ${id} submitted in ${req.workspace} (trace ${traceId})`);
		return this.change(id, (r) => machine.queue(r, this.now()));
	}

	async cancel(id: string, reason?: string): Promise<Run> {
		return this.change(id, (r) => machine.cancel(r, this.now(), reason));
	}

	async retry(id: string): Promise<Run> {
		return this.change(id, (r) => machine.retry(r, this.now()));
	}

	/** A sidecar's `started` event. */
	async onRunnerEvent(e: RunnerEvent): Promise<void> {
		if (e.type !== "started") return;
		await this.changeIfExists(e.run_id, e.workspace, (r) => machine.start(r, e.attempt, new Date(e.at), this.now()));
	}

	async onDone(done: Done): Promise<void> {
		await this.changeIfExists(done.run_id, done.workspace, (r) => machine.complete(r, done, this.now()));
	}

	/** What the runtime saw (kubernetes Job/Pod watch). The sidecar's own `done` wins when it comes first. */
	async onObservation(o: WorkloadObservation): Promise<void> {
		if (o.phase === "vanished") {
			const why = `workload of attempt ${o.attempt} vanished${o.reason ? `: ${o.reason}` : ""}`;
			await this.changeIfExists(o.runId, undefined, (r) => machine.lose(r, o.attempt, "runtime_failure", why, this.now()));
		} else if (o.phase === "failed") {
			const why = `workload of attempt ${o.attempt} failed${o.reason ? `: ${o.reason}` : ""}`;
			await this.changeIfExists(o.runId, undefined, (r) =>
				r.attempt === o.attempt ? machine.fail(r, "runtime_failure", why, this.now()) : { run: r, transitions: [] },
			);
		}
	}

	/**
	 * The watchdog: an attempt silent for 3 heartbeat intervals is lost (retried or failed), a QUEUED attempt that
	 * never started fails; also re-publishes transition events a crash left unpublished.
	 */
	async sweep(): Promise<void> {
		const now = this.now().getTime();
		const up = this.deps.busUpSince();
		if (up === undefined) return;
		const busUp = up + RECONNECT_GRACE_MS;
		const running = this.deps.store.inStatus("RUNNING");
		for (const run of running) {
			const key = `${run.id}:${run.attempt}`;
			const limit = LOST_AFTER_INTERVALS * run.heartbeat_interval_ms;
			const base = Math.max(busUp, Date.parse(run.started_at ?? run.queued_at ?? run.created_at));
			// A heartbeat already known to be recent enough spares asking the stream on every sweep.
			if (now - Math.max(this.heard.get(key) ?? 0, base) <= limit) continue;
			const last = await this.deps.lastHeartbeat(run);
			if (last) this.heard.set(key, last.getTime());
			const since = Math.max(last?.getTime() ?? 0, base);
			if (now - since > limit) {
				const why = `no heartbeat for ${Math.round((now - since) / 1000)} s (limit ${LOST_AFTER_INTERVALS} × ${run.heartbeat_interval_ms} ms)`;
				this.deps.log.warn(`run ${run.id} attempt ${run.attempt}: ${why}`);
				await this.change(run.id, (r) => machine.lose(r, run.attempt, "lost_heartbeat", why, this.now()));
			}
		}
		const live = new Set(running.map((r) => `${r.id}:${r.attempt}`));
		for (const key of this.heard.keys()) if (!live.has(key)) this.heard.delete(key);
		for (const run of this.deps.store.inStatus("QUEUED")) {
			if (now - Math.max(busUp, Date.parse(run.queued_at ?? run.created_at)) > this.deps.startTimeoutMs) {
				const why = `attempt ${run.attempt} did not start within ${this.deps.startTimeoutMs} ms`;
				await this.change(run.id, (r) => machine.lose(r, run.attempt, "start_timeout", why, this.now()));
			}
		}
		for (const run of this.deps.store.withUnpublished()) await this.publishPending(run);
	}

	/**
	 * After a controller start: take charge of the workloads of RUNNING attempts that outlived a crash, launch QUEUED
	 * attempts again (idempotent) and finish what a crash interrupted.
	 */
	async reconcile(): Promise<void> {
		for (const run of this.deps.store.inStatus("RUNNING")) await this.deps.runtime.adopt?.(run.id, run.attempt);
		for (const run of this.deps.store.inStatus("QUEUED")) await this.launch(run);
		for (const run of this.deps.store.withUnpublished()) await this.publishPending(run);
	}

	private async changeIfExists(id: string, workspace: string | undefined, step: (r: Run) => machine.Step): Promise<void> {
		const run = await this.deps.store.get(id);
		if (!run) return; // telemetry of a run this platform does not know (deleted, or not ours)
		if (workspace !== undefined && run.workspace !== workspace) {
			this.deps.log.warn(`telemetry for run ${id} names workspace ${workspace}, but the run is in ${run.workspace}: ignored`);
			return;
		}
		await this.change(id, step);
	}

	/** Applies a state-machine step, then its consequences: events, and the workload started or stopped. */
	private async change(id: string, step: (r: Run) => machine.Step): Promise<Run> {
		let before: Run | undefined;
		const result = await this.deps.store.update(id, (r) => {
			before = r;
			return step(r);
		});
		if (!result.transitions.length) return result.run;
		for (const t of result.transitions) {
			this.deps.log.info(`run ${id}: ${t.from} → ${t.to} (attempt ${t.attempt})${t.reason ? `: ${t.reason}` : ""}`);
		}
		const last = result.transitions[result.transitions.length - 1]!;
		if (last.to === "CANCELLED" || (last.to === "QUEUED" && before && before.status === "RUNNING")) {
			// Stop what is running of the earlier attempt: cancelled, or lost but possibly still alive somewhere.
			await this.deps.runtime.cancel(id, before!.attempt).catch((err) => this.deps.log.warn(`run ${id}: cannot stop attempt ${before!.attempt}: ${describe(err)}`));
		}
		await this.publishPending(result.run);
		if (last.to === "QUEUED") return this.launch(result.run);
		return result.run;
	}

	/** Asks the runtime for the attempt's workload; a refusal that retrying cannot fix fails the run. */
	private async launch(run: Run): Promise<Run> {
		try {
			const credentials = await this.deps.credentials(run);
			await this.deps.runtime.start({
				runId: run.id,
				attempt: run.attempt,
				workspace: run.workspace,
				traceId: run.trace_id,
				image: run.image,
				command: run.command,
				env: run.env,
				resources: { cpu: run.resources.cpu, memory: run.resources.memory, gpus: run.resources.gpus, gpuType: run.resources.gpu_type },
				timeoutSec: run.timeout_sec,
				credentials,
				sidecar: { ...this.deps.sidecar, heartbeatIntervalMs: run.heartbeat_interval_ms },
			});
			return run;
		} catch (err) {
			if (err instanceof RuntimeError && err.retryable) {
				// The start timeout fails the attempt if the runtime stays unavailable; reconcile tries again.
				this.deps.log.warn(`run ${run.id}: runtime not available yet (${err.message})`);
				return run;
			}
			this.deps.log.error(`run ${run.id}: cannot start attempt ${run.attempt}: ${describe(err)}`);
			return this.change(run.id, (r) =>
				r.attempt === run.attempt ? machine.fail(r, "runtime_failure", `cannot start: ${describe(err)}`, this.now()) : { run: r, transitions: [] },
			);
		}
	}

	/** Publishes every unpublished transition, then marks them (a crash in between re-publishes: de-duplicated). */
	private async publishPending(run: Run): Promise<void> {
		const pending = run.history.filter((t) => !t.published);
		if (!pending.length) return;
		try {
			for (const t of pending) await this.deps.publish(run, t);
			await this.deps.store.update(run.id, (r) => {
				const marked = machine.markPublished(r, pending);
				return { run: marked, transitions: [] };
			});
		} catch (err) {
			this.deps.log.warn(`run ${run.id}: events not published yet (${describe(err)}); the watchdog retries`);
		}
	}
}
