/**
 * The runtime port: where a run's workload (trainer + runner sidecar) actually executes. Adapters: `local`
 * (child processes) and `kubernetes` (batch/v1 Jobs). Both give the workload the same environment (RUN_ENV).
 */

export interface WorkloadResources {
	/** Kubernetes quantities, e.g. "2", "500m". */
	cpu?: string;
	/** e.g. "4Gi". */
	memory?: string;
	gpus?: number;
	/** Node selector value for the GPU product label, e.g. "NVIDIA-A100-SXM4-40GB". */
	gpuType?: string;
}

export interface WorkloadSpec {
	runId: string;
	/** 1 for the first try; each retry is a new workload. */
	attempt: number;
	workspace: string;
	traceId: string;
	/** Container image of the trainer (kubernetes); the local runtime runs the command on this machine. */
	image: string;
	/** The trainer's argv. */
	command: string[];
	/** Extra environment for the trainer, on top of RUN_ENV. */
	env: Record<string, string>;
	resources: WorkloadResources;
	/** Hard limit on the attempt's wall time (Job activeDeadlineSeconds). */
	timeoutSec: number;
	/** NATS credentials file content (user JWT + seed) of this attempt's sidecar: a secret. */
	credentials: string;
	sidecar: {
		natsUrl: string;
		heartbeatIntervalMs: number;
		/** Where checkpoints are uploaded (blob port URL). */
		storageUrl: string;
	};
}

export type WorkloadPhase = "pending" | "running" | "succeeded" | "failed" | "vanished";

/** What a runtime saw of a workload; `vanished` means it is gone without a result (a retryable failure). */
export interface WorkloadObservation {
	runId: string;
	attempt: number;
	phase: WorkloadPhase;
	reason?: string;
	exitCode?: number;
}

export interface RuntimePort {
	readonly kind: "local" | "kubernetes";
	/** Idempotent: starting an attempt whose workload already exists succeeds without a second one. */
	start(spec: WorkloadSpec): Promise<void>;
	/** Stops the attempt's workload and everything it started; no error when it is already gone. */
	cancel(runId: string, attempt: number): Promise<void>;
	/** Reports workload changes until the returned function is called. */
	observe(onChange: (o: WorkloadObservation) => void): Promise<() => Promise<void>>;
	/**
	 * After a controller restart: takes charge again of the attempt's workload if it still runs, so that it ends
	 * with this process like the ones it started. Only runtimes whose workloads end with the platform need it.
	 */
	adopt?(runId: string, attempt: number): Promise<void>;
	/** The workloads that exist now, for reconciliation after a controller restart. */
	list(): Promise<WorkloadObservation[]>;
	close(): Promise<void>;
}

export class RuntimeError extends Error {
	override name = "RuntimeError";
	constructor(
		message: string,
		/** False when trying again cannot help (bad spec, refused by the cluster's admission). */
		readonly retryable: boolean,
	) {
		super(message);
	}
}
