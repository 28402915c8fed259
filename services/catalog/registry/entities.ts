import type { Artifact, Metrics } from "../../../events/telemetry";
import type { RunStatus } from "../../execution/run";
import { ENTITY_TYPES, type EntityType } from "../search/search-port";
import type { CatalogAliasChanged } from "../../../events/catalog";

/**
 * The catalog's entities as plain data (stored as JSON). Constructors validate their input and throw a
 * `CatalogError` before building anything, so a caller never holds a half-valid entity.
 */

export type CatalogErrorCode = "invalid" | "not_found" | "conflict";

export class CatalogError extends Error {
	override name = "CatalogError";
	constructor(
		message: string,
		readonly code: CatalogErrorCode,
	) {
		super(message);
	}
}

/** What every entity carries. Times are ISO 8601 (UTC). */
export interface EntityBase {
	id: string;
	kind: EntityType;
	workspace: string;
	name: string;
	description?: string;
	owner: string;
	tags: string[];
	created_at: string;
	updated_at: string;
}

export interface Dataset extends EntityBase {
	kind: "dataset";
	/** Column names, searchable ("species" finds the iris dataset). */
	columns: string[];
}

export interface DatasetVersion extends EntityBase {
	kind: "dataset_version";
	dataset_id: string;
	/** The version label (`v1`, `2026-01-01`, …), unique within its dataset (the store enforces that). */
	version: string;
	manifest_uri: string;
	file_count: number;
	bytes: number;
	/** Class name → number of samples. */
	class_distribution: Record<string, number>;
	/** Versions this one was curated from (dataset_version ids). */
	derived_from: string[];
}

/** One change of an alias, kept forever for the audit trail: the same shape as its domain event. */
export type AliasChange = CatalogAliasChanged;

export interface AliasState {
	version_id: string;
	/** Every change of this alias, oldest first. */
	history: AliasChange[];
}

export interface Model extends EntityBase {
	kind: "model";
	/** Class names the model predicts, searchable. */
	classes: string[];
	/** Alias name (`dev`, `prod`, `champion`, …) → the version it points at and its history. */
	aliases: Record<string, AliasState>;
}

export interface ModelVersion extends EntityBase {
	kind: "model_version";
	model_id: string;
	/** 1, 2, 3… within its model. */
	version: number;
	source_run_id?: string;
	metrics: Metrics;
	artifacts: Artifact[];
	model_card: string;
}

/** The catalog's copy of an execution run, rebuilt from `RunTransitioned` events (see indexing.ts). */
export interface RunEntity extends EntityBase {
	kind: "run";
	status: RunStatus;
	attempt: number;
	/** When the status last changed: with `attempt`, decides which of two copies is newer. */
	transitioned_at: string;
	dataset_version?: string;
	metrics: Metrics;
	artifacts: Artifact[];
	trace_id: string;
	failure_reason?: string;
}

export interface Endpoint extends EntityBase {
	kind: "endpoint";
	model_version_id: string;
	url: string;
}

export type CatalogEntity = Dataset | DatasetVersion | Model | ModelVersion | RunEntity | Endpoint;

/** The fields a caller supplies for every entity; times and defaults are filled in by the constructors. */
export interface BaseInput {
	id: string;
	workspace: string;
	name: string;
	owner: string;
	description?: string;
	tags?: string[];
}

export interface DatasetInput extends BaseInput {
	columns?: string[];
}

export interface DatasetVersionInput extends Omit<BaseInput, "name"> {
	/** Defaults to `<dataset name> <version>`. */
	name?: string;
	dataset_id: string;
	version: string;
	manifest_uri: string;
	file_count: number;
	bytes: number;
	class_distribution?: Record<string, number>;
	derived_from?: string[];
}

export interface ModelInput extends BaseInput {
	classes?: string[];
}

export interface ModelVersionInput extends Omit<BaseInput, "name"> {
	/** Defaults to `<model name> v<version>`. */
	name?: string;
	model_id: string;
	version: number;
	source_run_id?: string;
	metrics?: Metrics;
	artifacts?: Artifact[];
	model_card?: string;
}

export interface EndpointInput extends BaseInput {
	model_version_id: string;
	url: string;
}

// ---- validation helpers ----

function nonEmpty(value: unknown, what: string): string {
	if (typeof value !== "string" || value.trim().length === 0) throw new CatalogError(`${what} must be a non-empty string`, "invalid");
	return value;
}

function strings(value: unknown, what: string): string[] {
	if (value === undefined) return [];
	if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v.length > 0)) {
		throw new CatalogError(`${what} must be a list of non-empty strings`, "invalid");
	}
	return [...new Set(value as string[])];
}

function count(value: unknown, what: string): number {
	if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
		throw new CatalogError(`${what} must be a non-negative integer, got ${JSON.stringify(value)}`, "invalid");
	}
	return value;
}

export function isoAt(at: Date): string {
	if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new CatalogError("time must be a valid Date", "invalid");
	return at.toISOString();
}

/** Fails with `not_found` when a referenced entity is missing, so callers can pass a lookup result as is. */
export function found<T>(value: T | undefined, what: string, id: string): T {
	if (value === undefined) throw new CatalogError(`${what} ${id} not found`, "not_found");
	return value;
}

/** A referenced entity must live in the same workspace: lineage and permissions never cross workspaces silently. */
function sameWorkspace(child: { id: string; workspace: string }, childWhat: string, parent: { id: string; workspace: string }, parentWhat: string): void {
	if (child.workspace !== parent.workspace) {
		throw new CatalogError(
			`${childWhat} ${child.id} in workspace ${child.workspace} cannot belong to ${parentWhat} ${parent.id} of workspace ${parent.workspace}`,
			"invalid",
		);
	}
}

function base<K extends EntityType>(kind: K, input: BaseInput, what: string, at: Date) {
	const id = nonEmpty(input?.id, `${what} id`);
	const when = isoAt(at);
	return {
		id,
		kind,
		workspace: nonEmpty(input.workspace, `${what} ${id}: workspace`),
		name: nonEmpty(input.name, `${what} ${id}: name`).trim(),
		...(input.description === undefined ? {} : { description: input.description }),
		owner: nonEmpty(input.owner, `${what} ${id}: owner`),
		tags: strings(input.tags, `${what} ${id}: tags`),
		created_at: when,
		updated_at: when,
	};
}

// ---- constructors ----

export function newDataset(input: DatasetInput, at: Date): Dataset {
	const b = base("dataset", input, "dataset", at);
	return { ...b, columns: strings(input.columns, `dataset ${b.id}: columns`) };
}

export function newDatasetVersion(input: DatasetVersionInput, dataset: Dataset | undefined, at: Date): DatasetVersion {
	const id = nonEmpty(input?.id, "dataset version id");
	const parent = found(dataset, "dataset", nonEmpty(input.dataset_id, `dataset version ${id}: dataset_id`));
	if (parent.id !== input.dataset_id) throw new CatalogError(`dataset version ${id}: dataset ${parent.id} given for dataset_id ${input.dataset_id}`, "invalid");
	const version = nonEmpty(input.version, `dataset version ${id}: version`);
	const b = base("dataset_version", { ...input, name: input.name ?? `${parent.name} ${version}` }, "dataset version", at);
	sameWorkspace(b, "dataset version", parent, "dataset");
	const distribution: Record<string, number> = {};
	for (const [cls, n] of Object.entries(input.class_distribution ?? {})) distribution[cls] = count(n, `dataset version ${id}: class_distribution.${cls}`);
	const derived = strings(input.derived_from, `dataset version ${id}: derived_from`);
	if (derived.includes(id)) throw new CatalogError(`dataset version ${id} cannot be derived from itself`, "invalid");
	return {
		...b,
		dataset_id: parent.id,
		version,
		manifest_uri: nonEmpty(input.manifest_uri, `dataset version ${id}: manifest_uri`),
		file_count: count(input.file_count, `dataset version ${id}: file_count`),
		bytes: count(input.bytes, `dataset version ${id}: bytes`),
		class_distribution: distribution,
		derived_from: derived,
	};
}

export function newModel(input: ModelInput, at: Date): Model {
	const b = base("model", input, "model", at);
	return { ...b, classes: strings(input.classes, `model ${b.id}: classes`), aliases: {} };
}

export function newModelVersion(input: ModelVersionInput, model: Model | undefined, at: Date): ModelVersion {
	const id = nonEmpty(input?.id, "model version id");
	const parent = found(model, "model", nonEmpty(input.model_id, `model version ${id}: model_id`));
	if (parent.id !== input.model_id) throw new CatalogError(`model version ${id}: model ${parent.id} given for model_id ${input.model_id}`, "invalid");
	if (typeof input.version !== "number" || !Number.isInteger(input.version) || input.version < 1) {
		throw new CatalogError(`model version ${id}: version must be an integer ≥ 1, got ${JSON.stringify(input.version)}`, "invalid");
	}
	const b = base("model_version", { ...input, name: input.name ?? `${parent.name} v${input.version}` }, "model version", at);
	sameWorkspace(b, "model version", parent, "model");
	const metrics: Metrics = {};
	for (const [k, v] of Object.entries(input.metrics ?? {})) {
		if (typeof v !== "number" || !Number.isFinite(v)) throw new CatalogError(`model version ${id}: metric ${k} must be a finite number`, "invalid");
		metrics[k] = v;
	}
	return {
		...b,
		model_id: parent.id,
		version: input.version,
		...(input.source_run_id === undefined ? {} : { source_run_id: nonEmpty(input.source_run_id, `model version ${id}: source_run_id`) }),
		metrics,
		artifacts: [...(input.artifacts ?? [])],
		model_card: input.model_card ?? "",
	};
}

export function newEndpoint(input: EndpointInput, version: ModelVersion | undefined, at: Date): Endpoint {
	const id = nonEmpty(input?.id, "endpoint id");
	const target = found(version, "model version", nonEmpty(input.model_version_id, `endpoint ${id}: model_version_id`));
	const b = base("endpoint", input, "endpoint", at);
	sameWorkspace(b, "endpoint", target, "model version");
	let url: URL;
	try {
		url = new URL(nonEmpty(input.url, `endpoint ${id}: url`));
	} catch (err) {
		if (err instanceof CatalogError) throw err;
		throw new CatalogError(`endpoint ${id}: url ${JSON.stringify(input.url)} is not a URL`, "invalid");
	}
	if (url.protocol !== "http:" && url.protocol !== "https:") throw new CatalogError(`endpoint ${id}: url must be http or https`, "invalid");
	return { ...b, model_version_id: target.id, url: url.toString() };
}

/**
 * Checks data from outside (a stored document, a request) before it is treated as an entity: the kind must be
 * one the catalog knows and the common fields must be there.
 */
export function checkEntity(value: unknown): CatalogEntity {
	if (typeof value !== "object" || value === null) throw new CatalogError("an entity must be an object", "invalid");
	const e = value as Partial<EntityBase>;
	const id = nonEmpty(e.id, "entity id");
	if (!(ENTITY_TYPES as readonly unknown[]).includes(e.kind)) throw new CatalogError(`entity ${id}: unknown type ${JSON.stringify(e.kind)}`, "invalid");
	nonEmpty(e.workspace, `${e.kind} ${id}: workspace`);
	nonEmpty(e.name, `${e.kind} ${id}: name`);
	nonEmpty(e.owner, `${e.kind} ${id}: owner`);
	strings(e.tags, `${e.kind} ${id}: tags`);
	return value as CatalogEntity;
}
