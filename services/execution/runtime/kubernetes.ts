/**
 * The `kubernetes` runtime: each attempt is a batch/v1 Job (trainer + runner sidecar, see kubernetes-manifests)
 * and a Secret with its NATS credentials, owned by the Job so they go away together.
 */
import { existsSync } from "node:fs";
import { STATUS_CODES } from "node:http";
import { join } from "node:path";
import type * as K8s from "@kubernetes/client-node" with { "resolution-mode": "import" };
import {
	MANAGED_SELECTOR,
	buildJob,
	buildSecret,
	workloadIdentity,
	workloadName,
} from "./kubernetes-manifests";
import { RuntimeError, type RuntimePort, type WorkloadObservation, type WorkloadSpec } from "./runtime";

type K8sModule = typeof K8s;
/** pino-style (context object, then message): a pino or Moleculer logger fits. */
export interface RuntimeLog {
	info(obj: object, msg: string): void;
	warn(obj: object, msg: string): void;
	error(obj: object, msg: string): void;
}

export interface KubernetesRuntimeOptions {
	namespace: string;
	sidecarImage: string;
	/** How long a finished Job (and so its Secret) is kept; default 3600. */
	ttlSecondsAfterFinished?: number;
	/** Default: loadFromDefault() (KUBECONFIG, ~/.kube/config, or the in-cluster service account). */
	kubeConfig?: K8s.KubeConfig;
	log: RuntimeLog;
	/** Deadline of one API call (not of a watch); default 30000. */
	requestTimeoutMs?: number;
	/** First pause before re-listing after a watch ended; doubles on consecutive failures, up to 30 s. Default 1000. */
	watchRetryMs?: number;
	/**
	 * How long a terminal observation waits for the other stream (Jobs vs Pods) to catch up, so a pod evicted
	 * under a running Job is reported `vanished` rather than the Job's consequent failure. Default 2000.
	 */
	settleMs?: number;
}

/** A RuntimeError that knows the HTTP status the API answered, when it answered. */
export class KubernetesApiError extends RuntimeError {
	constructor(message: string, retryable: boolean, readonly status?: number) {
		super(message, retryable);
	}
}

/** Server-side end of a watch; the client gives up after this plus a margin if the server did not close it. */
const WATCH_TIMEOUT_S = 300;
const PAGE_SIZE = 500;

export class KubernetesRuntime implements RuntimePort {
	readonly kind = "kubernetes" as const;
	private readonly batch: K8s.BatchV1Api;
	private readonly core: K8s.CoreV1Api;
	private readonly namespace: string;
	private readonly observers = new Set<JobObserver>();

	/** The client is an ES module: it is loaded here, once, with a real dynamic import. */
	static async create(opts: KubernetesRuntimeOptions): Promise<KubernetesRuntime> {
		const k8s = await import("@kubernetes/client-node");
		let kc = opts.kubeConfig;
		if (!kc) {
			// loadFromDefault falls back to http://localhost:8080 when it finds nothing: say so at start instead.
			const home = process.env.HOME ?? "";
			if (!process.env.KUBECONFIG && !existsSync(join(home, ".kube", "config")) && !process.env.KUBERNETES_SERVICE_HOST) {
				throw new RuntimeError("RUNTIME=kubernetes, but no cluster is configured: set KUBECONFIG, provide ~/.kube/config, or run in-cluster", false);
			}
			kc = new k8s.KubeConfig();
			kc.loadFromDefault();
		}
		return new KubernetesRuntime(k8s, kc, opts);
	}

	private constructor(
		private readonly k8s: K8sModule,
		private readonly kc: K8s.KubeConfig,
		private readonly opts: KubernetesRuntimeOptions,
	) {
		this.namespace = opts.namespace;
		this.batch = kc.makeApiClient(k8s.BatchV1Api);
		this.core = kc.makeApiClient(k8s.CoreV1Api);
	}

	async start(spec: WorkloadSpec): Promise<void> {
		const job = buildJob(spec, {
			sidecarImage: this.opts.sidecarImage,
			ttlSecondsAfterFinished: this.opts.ttlSecondsAfterFinished ?? 3600,
		});
		const name = workloadName(spec.runId, spec.attempt);
		const where = `${name} in namespace ${this.namespace}`;
		const namespace = this.namespace;
		// Error texts from the API could quote the Secret back: they are scrubbed of the credential.
		const hide = [spec.credentials, Buffer.from(spec.credentials).toString("base64")];

		// The Secret first, so the pod never waits for its volume. AlreadyExists: a repeated start.
		const secret = buildSecret(spec);
		await this.call(`create secret ${where}`, () => this.core.createNamespacedSecret({ namespace, body: secret }), hide).catch((err) =>
			ignoreStatus(err, 409),
		);

		let uid: string | undefined;
		try {
			const created = await this.call(`create job ${where}`, () => this.batch.createNamespacedJob({ namespace, body: job }));
			uid = created.metadata?.uid;
		} catch (err) {
			if (!(err instanceof KubernetesApiError && err.status === 409)) {
				// Refused for good: the Job will never exist, so neither should its Secret (nothing would collect it).
				if (err instanceof RuntimeError && !err.retryable) await this.deleteSecret(name).catch(() => undefined);
				throw err;
			}
			// A repeated start: the Job is there; make sure it is this attempt's before adopting it.
			const existing = await this.call(`read job ${where}`, () => this.batch.readNamespacedJob({ name, namespace }));
			const id = workloadIdentity(existing.metadata);
			if (id?.runId !== spec.runId || id.attempt !== spec.attempt) {
				throw new KubernetesApiError(`kubernetes: job ${where} already exists and belongs to another workload`, false, 409);
			}
			uid = existing.metadata?.uid;
		}
		if (!uid) throw new KubernetesApiError(`kubernetes: job ${where} has no uid`, true);

		// Owned by the Job, the Secret is garbage-collected with it (TTL, cancel, manual delete).
		const owner = { apiVersion: "batch/v1", kind: "Job", name, uid };
		const patch = [{ op: "add", path: "/metadata/ownerReferences", value: [owner] }];
		await this.call(`set the owner of secret ${where}`, () => this.core.patchNamespacedSecret({ name, namespace, body: patch }), hide);
		this.opts.log.info({ runId: spec.runId, attempt: spec.attempt, job: name, namespace }, "kubernetes job started");
	}

	async cancel(runId: string, attempt: number): Promise<void> {
		const name = workloadName(runId, attempt);
		const where = `${name} in namespace ${this.namespace}`;
		// Foreground: the Job is gone only once its pod is; 404: already gone.
		await this.call(`delete job ${where}`, () =>
			this.batch.deleteNamespacedJob({ name, namespace: this.namespace, propagationPolicy: "Foreground" }),
		).catch((err) => ignoreStatus(err, 404));
		// Normally collected with the Job; deleted here too in case start stopped before setting its owner.
		await this.deleteSecret(name).catch((err) => ignoreStatus(err, 404));
		this.opts.log.info({ runId, attempt, job: name, namespace: this.namespace }, "kubernetes job cancelled");
	}

	async list(): Promise<WorkloadObservation[]> {
		const { items } = await this.listJobs();
		return items.map(jobObservation).filter((o): o is WorkloadObservation => o !== undefined);
	}

	async observe(onChange: (o: WorkloadObservation) => void): Promise<() => Promise<void>> {
		const observer = new JobObserver(this, onChange);
		this.observers.add(observer);
		observer.start();
		return async () => {
			this.observers.delete(observer);
			await observer.stop();
		};
	}

	async close(): Promise<void> {
		const all = [...this.observers];
		this.observers.clear();
		await Promise.all(all.map((o) => o.stop()));
	}

	// ---- used by JobObserver ----

	/** @internal */
	get log(): RuntimeLog {
		return this.opts.log;
	}

	/** @internal */
	get timing() {
		return { retryMs: this.opts.watchRetryMs ?? 1000, settleMs: this.opts.settleMs ?? 2000 };
	}

	/** @internal Every managed Job, all pages, and the resourceVersion to watch from. */
	listJobs(): Promise<{ items: K8s.V1Job[]; resourceVersion: string }> {
		return this.listAll(`list jobs in namespace ${this.namespace}`, (_continue) =>
			this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector: MANAGED_SELECTOR, limit: PAGE_SIZE, _continue }),
		);
	}

	/** @internal */
	listPods(): Promise<{ items: K8s.V1Pod[]; resourceVersion: string }> {
		return this.listAll(`list pods in namespace ${this.namespace}`, (_continue) =>
			this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: MANAGED_SELECTOR, limit: PAGE_SIZE, _continue }),
		);
	}

	/**
	 * @internal One watch of managed `jobs` or `pods` from `resourceVersion`. Resolves (never rejects) when the
	 * stream ends: undefined for a normal end, 410 Gone or `signal`, else the error (ERROR events included).
	 */
	watch(
		resource: "jobs" | "pods",
		resourceVersion: string,
		onEvent: (type: string, obj: any) => void,
		signal: AbortSignal,
	): Promise<Error | undefined> {
		const ns = this.namespace;
		const path = resource === "jobs" ? `/apis/batch/v1/namespaces/${ns}/jobs` : `/api/v1/namespaces/${ns}/pods`;
		const query = { labelSelector: MANAGED_SELECTOR, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_TIMEOUT_S };
		return new Promise((resolve) => {
			let finished = false;
			let controller: AbortController | undefined;
			const finish = (err?: Error) => {
				if (finished) return;
				finished = true;
				clearTimeout(silence);
				signal.removeEventListener("abort", onAbort);
				controller?.abort();
				resolve(err);
			};
			const onAbort = () => finish();
			// The client sets no deadline on a watch: a connection that died silently would hang here forever.
			const silence = setTimeout(
				() => finish(new Error(`watch of ${resource} outlived its timeout`)),
				(WATCH_TIMEOUT_S + 30) * 1000,
			);
			if (signal.aborted) return finish();
			signal.addEventListener("abort", onAbort);
			new this.k8s.Watch(this.kc)
				.watch(
					path,
					query,
					(type, obj) => {
						if (finished || type === "BOOKMARK") return;
						// 410 Gone: the resourceVersion is too old, an ordinary reason to list again.
						if (type === "ERROR" && obj?.code === 410) return finish();
						if (type === "ERROR") {
							return finish(new Error(`watch of ${resource}: ${obj?.code ?? ""} ${obj?.reason ?? ""} ${obj?.message ?? ""}`));
						}
						onEvent(type, obj);
					},
					(err) => finish(err ? new Error(`watch of ${resource}: ${errorText(err)}`) : undefined),
				)
				.then(
					(c) => {
						controller = c;
						if (finished) c.abort();
					},
					(err) => finish(new Error(`watch of ${resource}: ${errorText(err)}`)),
				);
		});
	}

	// ---- plumbing ----

	private deleteSecret(name: string): Promise<unknown> {
		return this.call(`delete secret ${name} in namespace ${this.namespace}`, () =>
			this.core.deleteNamespacedSecret({ name, namespace: this.namespace }),
		);
	}

	private async listAll<T>(
		what: string,
		page: (cont: string | undefined) => Promise<{ items: T[]; metadata?: K8s.V1ListMeta }>,
	): Promise<{ items: T[]; resourceVersion: string }> {
		const items: T[] = [];
		let cont: string | undefined;
		let resourceVersion = "";
		do {
			const res = await this.call(what, () => page(cont));
			items.push(...res.items);
			resourceVersion = res.metadata?.resourceVersion ?? resourceVersion;
			cont = res.metadata?._continue || undefined;
		} while (cont);
		return { items, resourceVersion };
	}

	/** One API call with a deadline; any failure becomes a KubernetesApiError saying what failed and whether to retry. */
	private async call<T>(what: string, fn: () => Promise<T>, hide: string[] = []): Promise<T> {
		const ms = this.opts.requestTimeoutMs ?? 30_000;
		let timer: NodeJS.Timeout | undefined;
		const deadline = new Promise<never>((_, reject) => {
			timer = setTimeout(() => reject(new KubernetesApiError(`kubernetes: ${what} timed out after ${ms} ms`, true)), ms);
		});
		try {
			return await Promise.race([fn(), deadline]);
		} catch (err) {
			throw toRuntimeError(what, err, hide);
		} finally {
			clearTimeout(timer);
		}
	}
}

/**
 * Follows the managed Jobs and their Pods and reports each attempt's phase changes. Phases only move forward
 * (pending → running → one terminal phase, reported once). Every (re)start lists both kinds, then watches both
 * from the lists' resourceVersions; when either stream ends or fails (410 Gone included) both are listed again,
 * so nothing is missed: objects gone from a new list count as deleted.
 */
class JobObserver {
	private readonly tracked = new Map<string, Tracked>();
	private readonly stopping = new AbortController();
	private loop?: Promise<void>;

	constructor(
		private readonly rt: KubernetesRuntime,
		private readonly onChange: (o: WorkloadObservation) => void,
	) {}

	start(): void {
		this.loop = this.run();
	}

	async stop(): Promise<void> {
		this.stopping.abort();
		await this.loop;
		for (const t of this.tracked.values()) clearTimeout(t.settle);
		this.tracked.clear();
	}

	private async run(): Promise<void> {
		const { retryMs } = this.rt.timing;
		let delay = retryMs;
		while (!this.stopping.signal.aborted) {
			let failure: unknown;
			try {
				const [jobs, pods] = [await this.untilStopped(this.rt.listJobs()), await this.untilStopped(this.rt.listPods())];
				this.sync(jobs.items, pods.items);
				delay = retryMs;
				const both = new AbortController();
				const stopBoth = () => both.abort();
				this.stopping.signal.addEventListener("abort", stopBoth);
				try {
					failure = await Promise.race([
						this.rt.watch("jobs", jobs.resourceVersion, (type, job) => this.onJob(type, job), both.signal),
						this.rt.watch("pods", pods.resourceVersion, (type, pod) => this.onPod(type, pod), both.signal),
					]);
				} finally {
					both.abort();
					this.stopping.signal.removeEventListener("abort", stopBoth);
				}
			} catch (err) {
				failure = err;
			}
			if (this.stopping.signal.aborted) break;
			if (failure) this.rt.log.warn({ err: errorText(failure) }, "kubernetes watch failed; listing again");
			await this.sleep(delay);
			if (failure) delay = Math.min(delay * 2, 30_000);
		}
	}

	/** A fresh list: every object counts as seen again; tracked ones missing from it were deleted meanwhile. */
	private sync(jobs: K8s.V1Job[], pods: K8s.V1Pod[]): void {
		const jobNames = new Set(jobs.map((j) => j.metadata?.name));
		for (const job of jobs) this.onJob("ADDED", job);
		for (const [name, t] of this.tracked) {
			if (!jobNames.has(name) && !t.deleted) {
				t.deleted = true;
				this.schedule(name, t);
			}
		}
		const podNames = new Set(pods.map((p) => p.metadata?.name));
		for (const pod of pods) this.onPod("ADDED", pod);
		for (const [name, t] of this.tracked) {
			if (t.pod && !podNames.has(t.pod) && !t.podGone) {
				t.podGone = "PodDeleted";
				this.schedule(name, t);
			}
		}
	}

	private onJob(type: string, job: K8s.V1Job): void {
		const name = job.metadata?.name;
		const id = workloadIdentity(job.metadata);
		if (!name || !id) return;
		let t = this.tracked.get(name);
		if (!t) this.tracked.set(name, (t = { ...id, job, deleted: false, rank: -1 }));
		t.job = job;
		const o = jobObservation(job);
		if (type === "DELETED") t.deleted = true;
		if (t.deleted || !o || (o.phase !== "pending" && o.phase !== "running")) this.schedule(name, t);
		else this.emit(t, o);
	}

	private onPod(type: string, pod: K8s.V1Pod): void {
		const jobName =
			pod.metadata?.ownerReferences?.find((r) => r.kind === "Job")?.name ?? pod.metadata?.labels?.["batch.kubernetes.io/job-name"];
		// Pods only add to what their Job says: one of an unknown (or already forgotten) Job is ignored.
		const t = jobName ? this.tracked.get(jobName) : undefined;
		if (!jobName || !t) return;
		t.pod = pod.metadata?.name;
		const trainer = pod.status?.containerStatuses?.find((c) => c.name === "trainer")?.state?.terminated;
		if (trainer) t.exitCode = trainer.exitCode;
		const gone = podGoneReason(type, pod);
		if (gone) {
			t.podGone ??= gone;
			this.schedule(jobName, t);
		} else if (pod.status?.phase === "Running") {
			this.emit(t, { runId: t.runId, attempt: t.attempt, phase: "running" });
		} else if (pod.status?.phase === "Pending") {
			this.emit(t, { runId: t.runId, attempt: t.attempt, phase: "pending" });
		}
	}

	/** Terminal decisions wait `settleMs` for the other stream, then look at the Job and its pod together. */
	private schedule(name: string, t: Tracked): void {
		if (t.settle) return;
		t.settle = setTimeout(() => {
			t.settle = undefined;
			const o = terminalObservation(t);
			if (o) this.emit(t, o);
			if (t.deleted && this.tracked.get(name) === t) this.tracked.delete(name);
		}, this.rt.timing.settleMs);
	}

	private emit(t: Tracked, o: WorkloadObservation): void {
		const rank = o.phase === "pending" ? 0 : o.phase === "running" ? 1 : 2;
		if (rank <= t.rank) return;
		t.rank = rank;
		try {
			this.onChange(o);
		} catch (err) {
			this.rt.log.error({ err: errorText(err), runId: o.runId, attempt: o.attempt }, "workload observer threw");
		}
	}

	private untilStopped<T>(p: Promise<T>): Promise<T> {
		const signal = this.stopping.signal;
		return new Promise<T>((resolve, reject) => {
			const onAbort = () => reject(new Error("observer stopped"));
			if (signal.aborted) return onAbort();
			signal.addEventListener("abort", onAbort, { once: true });
			p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
		});
	}

	private sleep(ms: number): Promise<void> {
		return new Promise((resolve) => {
			const signal = this.stopping.signal;
			const done = () => {
				clearTimeout(timer);
				signal.removeEventListener("abort", done);
				resolve();
			};
			const timer = setTimeout(done, ms);
			signal.addEventListener("abort", done, { once: true });
		});
	}
}

interface Tracked {
	runId: string;
	attempt: number;
	/** Latest version seen. */
	job: K8s.V1Job;
	/** DELETED seen, or missing from a later list. */
	deleted: boolean;
	pod?: string;
	/** Why the pod went away (evicted, preempted, deleted) before the Job finished, if it did. */
	podGone?: string;
	exitCode?: number;
	/** Of the last phase reported: -1 none, 0 pending, 1 running, 2 terminal. */
	rank: number;
	settle?: NodeJS.Timeout;
}

/** What a Job alone says of its attempt (list(), and the non-terminal phases of observe()). */
function jobObservation(job: K8s.V1Job): WorkloadObservation | undefined {
	const id = workloadIdentity(job.metadata);
	if (!id) return undefined;
	const c = finishedCondition(job);
	if (c?.type === "Complete" || c?.type === "SuccessCriteriaMet") return { ...id, phase: "succeeded" };
	if (c) return { ...id, phase: "failed", reason: conditionReason(c) };
	if (job.metadata?.deletionTimestamp) return { ...id, phase: "vanished", reason: "JobDeleted" };
	return { ...id, phase: (job.status?.ready ?? 0) > 0 ? "running" : "pending" };
}

function terminalObservation(t: Tracked): WorkloadObservation | undefined {
	const id = { runId: t.runId, attempt: t.attempt };
	const exit = t.exitCode === undefined ? {} : { exitCode: t.exitCode };
	const c = finishedCondition(t.job);
	if (c?.type === "Complete" || c?.type === "SuccessCriteriaMet") return { ...id, phase: "succeeded", ...exit };
	// The Job's own deadline kills the pod: a failure of the attempt, not a disappearance.
	if (c?.reason === "DeadlineExceeded") return { ...id, phase: "failed", reason: conditionReason(c), ...exit };
	if (!c && (t.deleted || t.job.metadata?.deletionTimestamp)) return { ...id, phase: "vanished", reason: "JobDeleted" };
	// The pod was evicted, preempted or deleted: the Job then fails too (backoffLimit 0), but the trainer did not.
	if (t.podGone) return { ...id, phase: "vanished", reason: t.podGone };
	if (c) return { ...id, phase: "failed", reason: conditionReason(c), ...exit };
	return undefined;
}

/** Complete/Failed, else their early forms (SuccessCriteriaMet/FailureTarget, set before the pods are stopped). */
function finishedCondition(job: K8s.V1Job): K8s.V1JobCondition | undefined {
	const conditions = (job.status?.conditions ?? []).filter((c) => c.status === "True");
	return (
		conditions.find((c) => c.type === "Complete" || c.type === "Failed") ??
		conditions.find((c) => c.type === "SuccessCriteriaMet" || c.type === "FailureTarget")
	);
}

function conditionReason(c: K8s.V1JobCondition): string {
	return [c.reason ?? c.type, c.message].filter(Boolean).join(": ");
}

function podGoneReason(type: string, pod: K8s.V1Pod): string | undefined {
	const disruption = pod.status?.conditions?.find((c) => c.type === "DisruptionTarget" && c.status === "True");
	if (disruption) return [disruption.reason ?? "DisruptionTarget", disruption.message].filter(Boolean).join(": ");
	if (pod.status?.phase === "Failed" && pod.status.reason === "Evicted") return ["Evicted", pod.status.message].filter(Boolean).join(": ");
	if (type === "DELETED" || pod.metadata?.deletionTimestamp) return "PodDeleted";
	return undefined;
}

// ---- errors ----

function ignoreStatus(err: unknown, status: number): void {
	if (err instanceof KubernetesApiError && err.status === status) return;
	throw err;
}

/** 5xx, 429, 408 and conflicts may pass; a refusal (400, 401, 403, 404, 422…) will not. */
function retryableStatus(status: number): boolean {
	return status >= 500 || status === 429 || status === 408 || status === 409;
}

function toRuntimeError(what: string, err: unknown, hide: string[]): RuntimeError {
	if (err instanceof RuntimeError) return err;
	const status = (err as { code?: unknown })?.code;
	let message: string;
	let retryable: boolean;
	let httpStatus: number | undefined;
	if (typeof status === "number") {
		// An ApiException: its own message dumps the whole body and headers; keep the Status's reason and message.
		const body = parseStatus((err as { body?: unknown }).body);
		const detail = [body.reason ?? STATUS_CODES[status], body.message].filter(Boolean).join(": ");
		message = `kubernetes: ${what} failed with HTTP ${status}${detail ? ` (${detail.slice(0, 500)})` : ""}`;
		retryable = retryableStatus(status);
		httpStatus = status;
	} else {
		// No answer (connection refused, reset, DNS…): the API may come back.
		message = `kubernetes: ${what} failed: ${errorText(err)}`;
		retryable = true;
	}
	return new KubernetesApiError(scrub(message, hide), retryable, httpStatus);
}

function parseStatus(body: unknown): { reason?: string; message?: string } {
	let b = body;
	if (typeof body === "string") {
		try {
			b = JSON.parse(body);
		} catch {
			return { message: body.slice(0, 200) };
		}
	}
	if (!b || typeof b !== "object") return {};
	const { reason, message } = b as { reason?: unknown; message?: unknown };
	return { reason: typeof reason === "string" ? reason : undefined, message: typeof message === "string" ? message : undefined };
}

/** Removes secret texts (whole, and each long line of them) from a message. */
function scrub(message: string, hide: string[]): string {
	let out = message;
	for (const secret of hide) {
		for (const part of [secret, ...secret.split("\n")].map((s) => s.trim()).filter((s) => s.length >= 8)) {
			out = out.split(part).join("***");
		}
	}
	return out;
}

function errorText(err: unknown): string {
	return err instanceof Error ? err.message : String(err);
}
