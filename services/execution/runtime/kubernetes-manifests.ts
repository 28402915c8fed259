/**
 * The Kubernetes objects of one attempt (a Secret holding its NATS credentials and a batch/v1 Job running the
 * trainer with the runner sidecar), built as plain data: no client calls here, so they can be checked alone.
 */
import { createHash } from "node:crypto";
import type { V1Container, V1EnvVar, V1Job, V1ObjectMeta, V1Secret } from "@kubernetes/client-node" with { "resolution-mode": "import" };
import { ATTACH_FILES, RUN_ENV } from "../../../lib/run-env";
import { RuntimeError, type WorkloadSpec } from "./runtime";

const MANAGED_BY = "savassan";

/** Label keys; the annotations of the same keys hold the exact values (label values may be sanitized). */
export const LABELS = {
	managedBy: "app.kubernetes.io/managed-by",
	runId: "savassan.dev/run-id",
	attempt: "savassan.dev/attempt",
	workspace: "savassan.dev/workspace",
	traceId: "savassan.dev/trace-id",
} as const;

/** Selects every object this platform created (watch, list). */
export const MANAGED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;

/** Where the pod's shared volumes are mounted. */
const PATHS = {
	attach: "/savassan/attach",
	checkpoints: "/savassan/checkpoints",
	creds: "/savassan/creds",
} as const;
/** Key of the credentials file in the Secret (and its file name under PATHS.creds). */
export const CREDS_KEY = "nats.creds";

const VOLUMES = { attach: "attach", checkpoints: "checkpoints", creds: "nats-creds" } as const;
const TRAINER = "trainer";
const SIDECAR = "runner";

const RUN_ID = /^[A-Za-z0-9_-]+$/;
const MAX_NAME = 63;
const HASH_LEN = 8;

const hash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, HASH_LEN);

/**
 * The Job (and Secret) name of an attempt: `run-<run id>-a<attempt>`, a DNS-1123 label of at most 63 characters.
 * The run id is lowercased and '_' becomes '-'; when that lost information, or the id had to be cut, or the
 * result could be mistaken for a hashed name, `-<8 hex of sha256(run id)>` follows the (cut) id, so two run ids
 * never share a name.
 */
export function workloadName(runId: string, attempt: number): string {
	assertIdentity(runId, attempt);
	const suffix = `-a${attempt}`;
	const mapped = runId.toLowerCase().replace(/_/g, "-");
	const plain = `run-${mapped}${suffix}`;
	// A plain name never ends its id part with "-<8 hex>": that shape is kept for hashed names.
	const looksHashed = new RegExp(`-[0-9a-f]{${HASH_LEN}}$`).test(mapped);
	if (mapped === runId && !looksHashed && plain.length <= MAX_NAME) return plain;
	const room = MAX_NAME - "run-".length - 1 - HASH_LEN - suffix.length;
	return `run-${mapped.slice(0, room)}-${hash(runId)}${suffix}`;
}

/**
 * A valid label value (≤ 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends). A value that is not one
 * already is cleaned, cut and suffixed with a hash of the original, so distinct values stay distinct.
 */
export function labelValue(value: string): string {
	if (value.length <= MAX_NAME && /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?)?$/.test(value)) return value;
	const body = value
		.replace(/[^A-Za-z0-9_.-]/g, "_")
		.replace(/^[^A-Za-z0-9]+/, "")
		.slice(0, MAX_NAME - 1 - HASH_LEN);
	return body ? `${body}.${hash(value)}` : hash(value);
}

/** Labels of the Job, its pod template and the Secret. */
function workloadLabels(spec: Pick<WorkloadSpec, "runId" | "attempt" | "workspace" | "traceId">): Record<string, string> {
	return {
		[LABELS.managedBy]: MANAGED_BY,
		[LABELS.runId]: labelValue(spec.runId),
		[LABELS.attempt]: String(spec.attempt),
		[LABELS.workspace]: labelValue(spec.workspace),
		[LABELS.traceId]: labelValue(spec.traceId),
	};
}

/** The exact identity values, as annotations (read back by `workloadIdentity`). */
function workloadAnnotations(spec: Pick<WorkloadSpec, "runId" | "attempt" | "workspace" | "traceId">): Record<string, string> {
	return {
		[LABELS.runId]: spec.runId,
		[LABELS.attempt]: String(spec.attempt),
		[LABELS.workspace]: spec.workspace,
		[LABELS.traceId]: spec.traceId,
	};
}

/** The run and attempt of a Job or Pod created by `buildJob`, from its annotations; undefined for others. */
export function workloadIdentity(meta: V1ObjectMeta | undefined): { runId: string; attempt: number } | undefined {
	const runId = meta?.annotations?.[LABELS.runId];
	const attempt = Number(meta?.annotations?.[LABELS.attempt]);
	if (!runId || !RUN_ID.test(runId) || !Number.isSafeInteger(attempt) || attempt < 1) return undefined;
	return { runId, attempt };
}

/** The per-attempt Secret holding the sidecar's NATS credentials file. */
export function buildSecret(spec: WorkloadSpec): V1Secret {
	return {
		apiVersion: "v1",
		kind: "Secret",
		metadata: {
			name: workloadName(spec.runId, spec.attempt),
			labels: workloadLabels(spec),
			annotations: workloadAnnotations(spec),
		},
		type: "Opaque",
		// The credentials of an attempt never change; immutable also spares the kubelet a watch on it.
		immutable: true,
		stringData: { [CREDS_KEY]: spec.credentials },
	};
}

export interface JobOptions {
	sidecarImage: string;
	ttlSecondsAfterFinished: number;
}

/**
 * The trainer container's script. It runs the argv given as positional parameters ("$@": never parsed by the
 * shell, so no injection), copies its output to the container log and to trainer.log in the attach folder, and
 * writes its exit code to exit-code (renamed into place, so the sidecar never reads a half-written file) once
 * the whole output is in the log. SIGTERM (deadline, cancel) is passed on to the trainer so it can save a last
 * checkpoint; `wait` returns early when a trapped signal arrives, hence the loop.
 */
export const TRAINER_SCRIPT = [
	`D="$${RUN_ENV.attachDir}"`,
	`mkfifo "$D/.out" || exit 1`,
	`tee -a "$D/${ATTACH_FILES.log}" < "$D/.out" &`,
	`t=$!`,
	`"$@" > "$D/.out" 2>&1 &`,
	`p=$!`,
	`trap 'kill -TERM "$p" 2>/dev/null' TERM INT`,
	`while :; do wait "$p"; c=$?; [ "$c" -gt 128 ] && kill -0 "$p" 2>/dev/null || break; done`,
	`wait "$t"`,
	`echo "$c" > "$D/${ATTACH_FILES.exitCode}.tmp" && mv "$D/${ATTACH_FILES.exitCode}.tmp" "$D/${ATTACH_FILES.exitCode}"`,
	`exit "$c"`,
].join("\n");

/** The batch/v1 Job of an attempt: one pod, no Kubernetes retries, the trainer plus the runner as a native sidecar. */
export function buildJob(spec: WorkloadSpec, opts: JobOptions): V1Job {
	assertSpec(spec);
	const name = workloadName(spec.runId, spec.attempt);
	const labels = workloadLabels(spec);
	const annotations = workloadAnnotations(spec);
	const runEnv: V1EnvVar[] = [
		{ name: RUN_ENV.runId, value: spec.runId },
		{ name: RUN_ENV.attempt, value: String(spec.attempt) },
		{ name: RUN_ENV.workspace, value: spec.workspace },
		{ name: RUN_ENV.traceId, value: spec.traceId },
		{ name: RUN_ENV.checkpointDir, value: PATHS.checkpoints },
	];
	const reserved = new Set<string>([...runEnv.map((e) => e.name), ...Object.values(RUN_ENV)]);
	const shared = [
		{ name: VOLUMES.attach, mountPath: PATHS.attach },
		{ name: VOLUMES.checkpoints, mountPath: PATHS.checkpoints },
	];
	const { cpu, memory, gpus, gpuType } = spec.resources;
	const quantities: Record<string, string> = {};
	if (cpu) quantities.cpu = cpu;
	if (memory) quantities.memory = memory;
	if (gpus && gpus > 0) quantities["nvidia.com/gpu"] = String(gpus);

	const trainer: V1Container = {
		name: TRAINER,
		image: spec.image,
		command: ["/bin/sh", "-c", TRAINER_SCRIPT, "sh", ...spec.command],
		env: [
			// The platform's variables come last and spec.env may not shadow them (nor see the sidecar's).
			...Object.entries(spec.env)
				.filter(([k]) => !reserved.has(k))
				.map(([k, v]) => ({ name: k, value: v })),
			...runEnv,
			{ name: RUN_ENV.attachDir, value: PATHS.attach },
		],
		resources: { requests: { ...quantities }, limits: { ...quantities } },
		volumeMounts: shared,
	};

	const sidecar: V1Container = {
		name: SIDECAR,
		image: opts.sidecarImage,
		// Native sidecar: starts before the trainer, runs beside it, is stopped after it; the Job ends with the trainer.
		restartPolicy: "Always",
		command: ["savassan-runner", "--attach"],
		env: [
			{ name: RUN_ENV.natsUrl, value: spec.sidecar.natsUrl },
			{ name: RUN_ENV.natsCreds, value: `${PATHS.creds}/${CREDS_KEY}` },
			{ name: RUN_ENV.heartbeatIntervalMs, value: String(spec.sidecar.heartbeatIntervalMs) },
			{ name: RUN_ENV.storageUrl, value: spec.sidecar.storageUrl },
			{ name: RUN_ENV.attachDir, value: PATHS.attach },
			...runEnv,
		],
		resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
		// The platform's code, not the user's: locked down whatever the trainer's image needs. It only reads the shared
		// folder (the trainer's output) and uploads; the platform image's user is 10001.
		securityContext: {
			runAsNonRoot: true,
			runAsUser: 10001,
			runAsGroup: 10001,
			allowPrivilegeEscalation: false,
			capabilities: { drop: ["ALL"] },
			seccompProfile: { type: "RuntimeDefault" },
		},
		volumeMounts: [...shared, { name: VOLUMES.creds, mountPath: PATHS.creds, readOnly: true }],
	};

	return {
		apiVersion: "batch/v1",
		kind: "Job",
		metadata: { name, labels, annotations },
		spec: {
			// Retries are the platform's: each is a new attempt, hence a new Job.
			backoffLimit: 0,
			ttlSecondsAfterFinished: opts.ttlSecondsAfterFinished,
			activeDeadlineSeconds: spec.timeoutSec,
			template: {
				metadata: { labels, annotations },
				spec: {
					restartPolicy: "Never",
					// The sidecar samples the trainer's CPU and memory through /proc.
					shareProcessNamespace: true,
					// The workload has no business with the Kubernetes API, nor with service env vars.
					automountServiceAccountToken: false,
					enableServiceLinks: false,
					...(gpuType ? { nodeSelector: { "nvidia.com/gpu.product": gpuType } } : {}),
					...(gpus && gpus > 0 ? { tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }] } : {}),
					initContainers: [sidecar],
					containers: [trainer],
					volumes: [
						{ name: VOLUMES.attach, emptyDir: {} },
						{ name: VOLUMES.checkpoints, emptyDir: {} },
						{
							name: VOLUMES.creds,
							secret: { secretName: name, defaultMode: 0o400, items: [{ key: CREDS_KEY, path: CREDS_KEY }] },
						},
					],
				},
			},
		},
	};
}

function assertIdentity(runId: string, attempt: number): void {
	if (!RUN_ID.test(runId)) throw new RuntimeError(`invalid run id ${JSON.stringify(runId)}: must match ${RUN_ID.source}`, false);
	if (!Number.isSafeInteger(attempt) || attempt < 1) throw new RuntimeError(`invalid attempt ${attempt}: must be an integer ≥ 1`, false);
}

function assertSpec(spec: WorkloadSpec): void {
	assertIdentity(spec.runId, spec.attempt);
	if (spec.command.length === 0) throw new RuntimeError(`run ${spec.runId}: empty command`, false);
	if (!spec.image) throw new RuntimeError(`run ${spec.runId}: no image`, false);
	if (!Number.isSafeInteger(spec.timeoutSec) || spec.timeoutSec < 1) {
		throw new RuntimeError(`run ${spec.runId}: timeoutSec must be an integer ≥ 1, got ${spec.timeoutSec}`, false);
	}
	if (spec.resources.gpus !== undefined && (!Number.isSafeInteger(spec.resources.gpus) || spec.resources.gpus < 0)) {
		throw new RuntimeError(`run ${spec.runId}: gpus must be a whole number, got ${spec.resources.gpus}`, false);
	}
}
