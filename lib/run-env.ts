/**
 * The environment contract of a run's workload, the same on every runtime. The trainer sees RUN_ID, TRACE_ID,
 * RUN_ATTEMPT, RUN_WORKSPACE and CHECKPOINT_DIR; the SAVASSAN_* variables are for the runner sidecar only.
 */
export const RUN_ENV = {
	runId: "RUN_ID",
	attempt: "RUN_ATTEMPT",
	workspace: "RUN_WORKSPACE",
	traceId: "TRACE_ID",
	/** Directory the trainer writes checkpoints to; the sidecar uploads new files from it. */
	checkpointDir: "CHECKPOINT_DIR",
	natsUrl: "SAVASSAN_NATS_URL",
	/** Path of the NATS credentials file (user JWT + seed) that may publish only this run's telemetry. */
	natsCreds: "SAVASSAN_NATS_CREDS",
	heartbeatIntervalMs: "SAVASSAN_HEARTBEAT_INTERVAL_MS",
	storageUrl: "SAVASSAN_STORAGE_URL",
	/** Attach mode (kubernetes): folder shared with the trainer container, holding its log and exit code. */
	attachDir: "SAVASSAN_ATTACH_DIR",
} as const;

/** Files the trainer container writes in the attach folder (kubernetes): the sidecar follows them. */
export const ATTACH_FILES = {
	log: "trainer.log",
	exitCode: "exit-code",
} as const;
