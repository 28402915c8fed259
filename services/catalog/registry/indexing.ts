import type { RunTransitioned } from "../../../events/catalog";
import type { Artifact, Metrics } from "../../../events/telemetry";
import { RUN_STATUSES, type RunStatus } from "../../execution/run";
import type { LineageEdge, LineageNode } from "../lineage/lineage-port";
import type { SearchDocument } from "../search/search-port";
import { aliasesOf } from "./aliases";
import { CatalogError, type CatalogEntity, type Model, type RunEntity } from "./entities";

/** Pure mappings from catalog entities to the search and lineage ports, and from run events to run entities. */

/** Runs carry no owner in the execution context. */
export const UNKNOWN_OWNER = "unknown";

/**
 * The search document of an entity. A model version's aliases live on its model, so pass the model to get
 * `stage` (its aliases, each findable by the stage filter) and the model's class names as fields.
 */
export function toSearchDocument(entity: CatalogEntity, model?: Model): SearchDocument {
	const doc: SearchDocument = {
		id: entity.id,
		type: entity.kind,
		workspace: entity.workspace,
		name: entity.name,
		...(entity.description === undefined ? {} : { description: entity.description }),
		tags: [...entity.tags],
		owner: entity.owner,
		fields: [],
		updated_at: entity.updated_at,
	};
	switch (entity.kind) {
		case "dataset":
			return { ...doc, fields: [...entity.columns] };
		case "dataset_version":
			return { ...doc, fields: Object.keys(entity.class_distribution) };
		case "model":
			return { ...doc, fields: [...entity.classes] };
		case "model_version": {
			if (model === undefined) return doc;
			if (model.id !== entity.model_id) throw new CatalogError(`model ${model.id} is not the model of version ${entity.id}`, "invalid");
			const aliases = aliasesOf(model, entity.id);
			return { ...doc, fields: [...model.classes], ...(aliases.length ? { stage: aliases } : {}) };
		}
		case "run":
		case "endpoint":
			return doc;
	}
}

/**
 * The entity's lineage node and the edges its own references imply, all pointing downstream as lineage-port.ts
 * requires. Each edge is emitted by the entity holding the reference, so every edge appears once; its other end
 * must already be a node (write parents before children, or all nodes before all edges).
 */
export function lineageOf(entity: CatalogEntity): { nodes: LineageNode[]; edges: LineageEdge[] } {
	const node: LineageNode = { id: entity.id, type: entity.kind, workspace: entity.workspace, name: entity.name };
	const at = entity.created_at;
	const edge = (from: string, kind: LineageEdge["kind"]): LineageEdge => ({ from, to: entity.id, kind, created_at: at });
	const edges: LineageEdge[] = [];
	switch (entity.kind) {
		case "dataset":
		case "model":
			break;
		case "dataset_version":
			edges.push(edge(entity.dataset_id, "version_of"));
			for (const source of entity.derived_from) edges.push(edge(source, "derived_from"));
			break;
		case "run":
			if (entity.dataset_version !== undefined) edges.push(edge(entity.dataset_version, "input_to"));
			break;
		case "model_version":
			edges.push(edge(entity.model_id, "version_of"));
			if (entity.source_run_id !== undefined) edges.push(edge(entity.source_run_id, "produced"));
			break;
		case "endpoint":
			edges.push(edge(entity.model_version_id, "deployed_as"));
			break;
	}
	return { nodes: [node], edges };
}

// ---- runs from the execution context ----

/** Within one attempt a run only moves forward: PENDING → QUEUED → RUNNING → a final status. */
const STATUS_RANK: Record<RunStatus, number> = { PENDING: 0, QUEUED: 1, RUNNING: 2, SUCCEEDED: 3, FAILED: 3, CANCELLED: 3 };

function time(value: unknown, what: string): string {
	const ms = typeof value === "string" ? Date.parse(value) : NaN;
	if (Number.isNaN(ms)) throw new CatalogError(`${what} must be an ISO-8601 time, got ${JSON.stringify(value)}`, "invalid");
	return new Date(ms).toISOString();
}

function metricsOf(value: unknown): Metrics {
	const out: Metrics = {};
	if (typeof value !== "object" || value === null) return out;
	for (const [k, v] of Object.entries(value)) if (typeof v === "number" && Number.isFinite(v)) out[k] = v;
	return out;
}

function artifactsOf(value: unknown): Artifact[] {
	if (!Array.isArray(value)) return [];
	return value.filter((a): a is Artifact => typeof a === "object" && a !== null && typeof (a as Artifact).uri === "string");
}

/** The catalog's run as of one `RunTransitioned` event: depends on the event only, so a replay gives the same entity. */
export function runFromEvent(e: RunTransitioned): RunEntity {
	const runId = typeof e?.run_id === "string" && e.run_id ? e.run_id : undefined;
	if (runId === undefined) throw new CatalogError("run event: run_id must be a non-empty string", "invalid");
	const run = e.run ?? {};
	if (run.id !== runId) throw new CatalogError(`run event ${runId}: the document is run ${JSON.stringify(run.id)}`, "invalid");
	if (typeof e.workspace !== "string" || !e.workspace || run.workspace !== e.workspace) {
		throw new CatalogError(`run event ${runId}: workspace ${JSON.stringify(e.workspace)} does not match the document's`, "invalid");
	}
	if (!(RUN_STATUSES as readonly string[]).includes(e.to)) throw new CatalogError(`run event ${runId}: unknown status ${JSON.stringify(e.to)}`, "invalid");
	if (typeof e.attempt !== "number" || !Number.isInteger(e.attempt) || e.attempt < 1) {
		throw new CatalogError(`run event ${runId}: attempt must be an integer ≥ 1`, "invalid");
	}
	const at = time(e.at, `run event ${runId}: at`);
	const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);
	const datasetVersion = str(run.dataset_version);
	const failure = e.failure_reason ?? str(run.failure_reason);
	return {
		id: runId,
		kind: "run",
		workspace: e.workspace,
		name: str(run.plan_ref) ?? runId,
		owner: str(run.owner) ?? UNKNOWN_OWNER,
		tags: [],
		created_at: str(run.created_at) === undefined ? at : time(run.created_at, `run ${runId}: created_at`),
		updated_at: at,
		status: e.to as RunStatus,
		attempt: e.attempt,
		transitioned_at: at,
		...(datasetVersion === undefined ? {} : { dataset_version: datasetVersion }),
		metrics: metricsOf(run.metrics),
		artifacts: artifactsOf(run.artifacts),
		trace_id: str(run.trace_id) ?? "",
		...(failure === undefined ? {} : { failure_reason: failure }),
	};
}

/**
 * The newer of two copies of a run: the higher attempt, then the later transition, then the further status
 * (two transitions can share an instant, e.g. a `done` that implies `started`). On a tie `a` (the copy already
 * held) is kept, so a redelivered event changes nothing.
 */
export function newer(a: RunEntity, b: RunEntity): RunEntity {
	if (a.id !== b.id) throw new CatalogError(`cannot compare run ${a.id} with run ${b.id}`, "conflict");
	const order =
		b.attempt - a.attempt ||
		Date.parse(b.transitioned_at) - Date.parse(a.transitioned_at) ||
		STATUS_RANK[b.status] - STATUS_RANK[a.status];
	return order > 0 ? b : a;
}

/** Folds one event into the catalog's copy of the run (absent: the first event seen). */
export function applyRunEvent(current: RunEntity | undefined, e: RunTransitioned): RunEntity {
	const next = runFromEvent(e);
	return current === undefined ? next : newer(current, next);
}
