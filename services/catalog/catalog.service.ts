import { Errors, type Context, type Service, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import { canonicalJson } from "../../lib/canonical-json";
import { AssetRejected, AssetStored, CatalogAliasChanged, CatalogEntityRegistered, RunTransitioned } from "../../events/catalog";
import { defineConsumer } from "../../events/consumers";
import { CurationVersionCreated } from "../../events/curation";
import { IngestDatasetVersionReceived, type DatasetVersionAnnounced, type IngestReceived } from "../../events/ingest";
import type { EventDefinition } from "../../events/definition";
import type { Published, PublishOptions } from "../../events/publish";
import type { BlobStore } from "../../lib/blob";
import type { PlatformConfig } from "../../lib/config";
import { busOf } from "../../lib/moleculer/bus.middleware";
import { openPlatformBlobs } from "../../lib/platform-blobs";
import { DurableEventsMixin, onEvent } from "../../lib/moleculer/durable-events.mixin";
import { CatalogStore, type EntityChanges } from "./catalog-store";
import { KeyedQueue } from "./keyed-queue";
import { curatedClasses } from "./curated-manifest";
import { catalogAdapters, type CatalogAdapters } from "./catalog-adapters";
import { edgeKey, LineageError, type LineageEdge, type LineagePort, type TraversalOptions } from "./lineage/lineage-port";
import { promote, rollback } from "./registry/aliases";
import {
	CatalogError,
	found,
	newDataset,
	newDatasetVersion,
	newEndpoint,
	newModel,
	newModelVersion,
	type CatalogEntity,
	type Dataset,
	type DatasetInput,
	type DatasetVersion,
	type DatasetVersionInput,
	type EndpointInput,
	type Model,
	type ModelInput,
	type ModelVersionInput,
} from "./registry/entities";
import { curatedVersion, curatedVersionId, curationSource, folderDataset, namedDatasetId } from "./registry/curation";
import { ingestedDataset, ingestedVersion, ingestedVersionId } from "./registry/ingested";
import { assetProblems, assetRefs } from "./registry/asset-refs";
import { applyRunEvent, lineageOf, toSearchDocument } from "./registry/indexing";
import type { EntityType, SearchPort, SearchQuery, SuggestOptions } from "./search/search-port";

/**
 * The catalog: datasets, their versions, models, model versions, runs (from execution's events) and endpoints.
 * The KV store is the source of truth; the search index and the lineage graph are views built from it at start and
 * kept current by following it, so several instances answer alike.
 */

const SERVICE = "catalog";
const IndexRuns = defineConsumer(SERVICE, RunTransitioned);
const IndexCuratedVersions = defineConsumer(SERVICE, CurationVersionCreated);
const IndexIngestedVersions = defineConsumer(SERVICE, IngestDatasetVersionReceived);
const LearnStoredAssets = defineConsumer(SERVICE, AssetStored);
const LearnRejectedAssets = defineConsumer(SERVICE, AssetRejected);
/** Run events handled at once (of different runs: one run's events stay in order, see KeyedQueue). */
const RUN_EVENT_CONCURRENCY = 8;

/** The lineage graph with the workspace of each node, so an edge is only drawn within one workspace. */
class LineageView {
	readonly workspaces = new Map<string, string>();
	/**
	 * Edges whose parent is not a node yet, by parent id (a run may name a dataset version registered later):
	 * drawn when the parent arrives, if it is of the child's workspace.
	 */
	private readonly waiting = new Map<string, Map<string, LineageEdge>>();

	constructor(readonly graph: LineagePort) {}

	async addNode(e: CatalogEntity): Promise<void> {
		for (const n of lineageOf(e).nodes) await this.graph.upsertNode(n);
		this.workspaces.set(e.id, e.workspace);
		const waiting = this.waiting.get(e.id);
		if (waiting === undefined) return;
		this.waiting.delete(e.id);
		for (const edge of waiting.values()) if (this.workspaces.get(edge.to) === e.workspace) await this.graph.addEdge(edge);
	}

	async addEdges(e: CatalogEntity): Promise<void> {
		for (const edge of lineageOf(e).edges) {
			const parent = this.workspaces.get(edge.from);
			if (parent === e.workspace) await this.graph.addEdge(edge);
			else if (parent === undefined) this.waiting.set(edge.from, (this.waiting.get(edge.from) ?? new Map()).set(edgeKey(edge.from, edge.kind, edge.to), edge));
		}
	}
}

/** The edges the store implies: every reference to an entity of the same workspace. */
function storeEdges(all: CatalogEntity[]): Set<string> {
	const workspaces = new Map(all.map((e) => [e.id, e.workspace]));
	const keys = new Set<string>();
	for (const e of all) for (const edge of lineageOf(e).edges) if (workspaces.get(edge.from) === e.workspace) keys.add(edgeKey(edge.from, edge.kind, edge.to));
	return keys;
}

export interface DriftReport {
	store: number;
	search: { indexed: number; missing: string[]; extra: string[] };
	/** Edges as `from|kind|to`: those the store implies but the graph lacks (or holds removed), and the reverse. */
	lineage: { nodes: number; missing: string[]; extra: string[]; edges: { missing: string[]; extra: string[] } };
	drift: boolean;
}

/** Both views, kept current entity by entity and rebuilt from the store as a whole. */
class CatalogViews {
	readonly search: SearchPort;
	lineage: LineageView;
	/** Entities indexed while a lineage rebuild reads the store: replayed onto the new graph before the swap. */
	private pending: CatalogEntity[] | null = null;
	private rebuilding: Promise<unknown> = Promise.resolve();

	constructor(
		private readonly store: CatalogStore,
		private readonly adapters: CatalogAdapters,
	) {
		this.search = adapters.search();
		this.lineage = new LineageView(adapters.lineage());
	}

	/** Indexes one stored entity; idempotent. */
	index(e: CatalogEntity): Promise<void> {
		return this.write(e, { search: true, lineage: true });
	}

	/**
	 * A change seen in the store, maybe written by another instance, applied to the views this instance keeps to
	 * itself (a shared Elasticsearch index or Neo4j graph was written by the writer); for a model, its versions'
	 * documents too, since they carry the model's stages.
	 */
	async apply(e: CatalogEntity): Promise<void> {
		const own = { search: !this.adapters.persistentSearch, lineage: !this.adapters.persistentLineage };
		await this.write(e, own);
		if (e.kind !== "model" || !own.search) return;
		const { edges } = await this.lineage.graph.downstream(e.id, { depth: 1 });
		for (const edge of edges) {
			if (edge.kind !== "version_of" || edge.from !== e.id) continue;
			const version = await this.store.get("model_version", edge.to);
			if (version) await this.search.upsert([toSearchDocument(version, e)]);
		}
	}

	private async write(e: CatalogEntity, views: { search: boolean; lineage: boolean }): Promise<void> {
		if (views.search) await this.search.upsert([toSearchDocument(e, e.kind === "model_version" ? await this.store.get("model", e.model_id) : undefined)]);
		if (!views.lineage) return;
		await this.lineage.addNode(e);
		await this.lineage.addEdges(e);
		this.pending?.push(e);
	}

	/** One at a time: a second rebuild waits for the first. */
	rebuild(): Promise<{ entities: number }> {
		const run = this.rebuilding.then(() => this.load());
		this.rebuilding = run.catch(() => undefined);
		return run;
	}

	private async load(): Promise<{ entities: number }> {
		this.pending = [];
		try {
			const all = await this.store.list();
			const models = new Map(all.filter((e): e is Model => e.kind === "model").map((m) => [m.id, m]));
			const next = new LineageView(this.adapters.lineage());
			// A persistent graph is rebuilt in place: what the store no longer implies goes first, then all is written again.
			if (this.adapters.persistentLineage) await next.graph.prune(new Set(all.map((e) => e.id)), storeEdges(all));
			// Nodes before edges: an edge needs both ends.
			for (const e of all) await next.addNode(e);
			for (const e of all) await next.addEdges(e);
			await this.search.rebuild(all.map((e) => toSearchDocument(e, e.kind === "model_version" ? models.get(e.model_id) : undefined)));
			for (const e of this.pending) await next.addNode(e);
			for (const e of this.pending) await next.addEdges(e);
			const old = this.lineage;
			this.lineage = next;
			if (old.graph !== next.graph) await old.graph.close();
			return { entities: all.length };
		} finally {
			this.pending = null;
		}
	}

	/** Ids and edges in the store but not in a view, and the reverse. */
	async check(): Promise<DriftReport> {
		const all = await this.store.list();
		const ids = new Set(all.map((e) => e.id));
		const workspaces = [...new Set(all.map((e) => e.workspace))];
		const indexedIds = new Set<string>();
		for (let offset = 0; ; offset += 1000) {
			const page = await this.search.search({ workspaces, limit: 1000, offset });
			for (const h of page.hits) indexedIds.add(h.id);
			if (offset + 1000 >= page.total) break;
		}
		// Each entity's live outgoing edges: undefined when it is not a node at all.
		const graph = this.lineage.graph;
		const outgoing = await Promise.all(
			all.map((e) =>
				graph.downstream(e.id, { depth: 1 }).then(
					(g) => g.edges.filter((edge) => edge.from === e.id).map((edge) => edgeKey(edge.from, edge.kind, edge.to)),
					(err) => (err instanceof LineageError && err.code === "not_found" ? undefined : Promise.reject(err)),
				),
			),
		);
		const expectedEdges = storeEdges(all);
		const graphEdges = new Set(outgoing.flatMap((keys) => keys ?? []));
		const edges = { missing: [...expectedEdges].filter((k) => !graphEdges.has(k)), extra: [...graphEdges].filter((k) => !expectedEdges.has(k)) };
		const indexed = await this.search.count();
		const nodes = await graph.nodeCount();
		const search = { indexed, missing: all.filter((e) => !indexedIds.has(e.id)).map((e) => e.id), extra: [...indexedIds].filter((id) => !ids.has(id)) };
		const lineage = { nodes, missing: all.filter((_, i) => outgoing[i] === undefined).map((e) => e.id), extra: [...this.lineage.workspaces.keys()].filter((id) => !ids.has(id)), edges };
		// The counts catch what the lists cannot name: documents or nodes of workspaces the store does not know.
		const drift =
			search.missing.length + search.extra.length + lineage.missing.length + lineage.extra.length + edges.missing.length + edges.extra.length > 0 ||
			indexed !== all.length ||
			nodes !== all.length;
		return { store: all.length, search, lineage, drift };
	}
}

interface CatalogThis extends Service {
	publishEvent<T>(def: EventDefinition<T>, payload: T, opts?: PublishOptions): Promise<Published>;
	store: CatalogStore;
	views: CatalogViews;
	runQueue: KeyedQueue;
	/** What other instances (and this one) store, applied to this instance's views. */
	changes?: EntityChanges;
	/** The platform's blob store, where curation writes its versions' manifests. */
	blobs: BlobStore;
	register(entity: CatalogEntity, traceId: string | null): Promise<CatalogEntity>;
	claimUnique(scope: string, value: string, id: string, taken: (holder: string) => string): Promise<void>;
	registerDatasetVersion(version: DatasetVersion, traceId: string | null): Promise<CatalogEntity>;
	checkAssets(entity: CatalogEntity): Promise<void>;
	reindexVersions(model: Model, versionIds: (string | undefined)[]): Promise<void>;
	aliasChanged(model: Model, alias: string, traceId: string | null): Promise<void>;
	registerCurated(e: CurationVersionCreated, traceId: string | null): Promise<CatalogEntity>;
	registerIngested(e: IngestReceived<DatasetVersionAnnounced>, traceId: string | null): Promise<CatalogEntity>;
	curatedDataset(e: CurationVersionCreated, traceId: string | null): Promise<Dataset>;
	guessCurationSource(dataset: Dataset): Promise<string | undefined>;
	curationSourceIn(versionId: string, workspace: string): Promise<string | undefined>;
}

const STATUS = { invalid: [422, "INVALID"], not_found: [404, "NOT_FOUND"], conflict: [409, "CONFLICT"] } as const;

/** An edge caller acts as itself: its identity replaces any owner or actor the params name. */
function asCaller<P extends object>(c: Context<P>): P {
	const principal = (c.meta as { principal?: string }).principal;
	if (!principal) return c.params;
	return { ...c.params, ...("owner" in c.params ? { owner: principal } : {}), ...("actor" in c.params ? { actor: principal } : {}) };
}

/** Domain errors as client errors with their HTTP status. */
function clientError(err: unknown): never {
	if (err instanceof CatalogError || err instanceof LineageError) {
		const [status, type] = STATUS[err.code];
		throw new Errors.MoleculerClientError(err.message, status, type);
	}
	throw err;
}

/** What a registration sets: times and aliases are the catalog's, not the caller's. */
function registeredContent(e: CatalogEntity): string {
	const { created_at: _c, updated_at: _u, ...rest } = e;
	if (rest.kind === "model") return canonicalJson({ ...rest, aliases: undefined });
	return canonicalJson(rest);
}

function sameWorkspace(child: CatalogEntity, parent: CatalogEntity): void {
	if (child.workspace !== parent.workspace) {
		throw new CatalogError(`${child.kind} ${child.id} in workspace ${child.workspace} cannot refer to ${parent.kind} ${parent.id} of workspace ${parent.workspace}`, "invalid");
	}
}

type TraversalParams = TraversalOptions & { id: string; workspaces: string[] };

function traversal(p: TraversalParams): TraversalOptions {
	return { depth: p.depth, workspaces: p.workspaces, ...(p.at === undefined ? {} : { at: p.at }) };
}

/** `adapters`: the search and lineage adapters, by default those the environment names (see catalog-adapters.ts). */
export function catalogService(config: PlatformConfig, adapters: CatalogAdapters = catalogAdapters(config.catalog)): ServiceSchema<ServiceSettingSchema, CatalogThis> {
	return {
		name: SERVICE,
		mixins: [DurableEventsMixin],
		actions: {
			async "datasets.register"(this: CatalogThis, c: Context<DatasetInput>) {
				return this.register(newDataset(asCaller(c), new Date()), c.requestID).catch(clientError);
			},
			async "datasets.versions.register"(this: CatalogThis, c: Context<DatasetVersionInput>) {
				const p = asCaller(c);
				try {
					const version = newDatasetVersion(p, await this.store.get("dataset", p.dataset_id), new Date());
					for (const source of version.derived_from) sameWorkspace(version, found(await this.store.get("dataset_version", source), "dataset version", source));
					return await this.registerDatasetVersion(version, c.requestID);
				} catch (err) {
					return clientError(err);
				}
			},
			async "models.register"(this: CatalogThis, c: Context<ModelInput>) {
				return this.register(newModel(asCaller(c), new Date()), c.requestID).catch(clientError);
			},
			async "models.versions.register"(this: CatalogThis, c: Context<ModelVersionInput>) {
				const p = asCaller(c);
				try {
					const version = newModelVersion(p, await this.store.get("model", p.model_id), new Date());
					if (version.source_run_id !== undefined) {
						const run = found(await this.store.get("run", version.source_run_id), "run", version.source_run_id);
						sameWorkspace(version, run);
						if (run.status !== "SUCCEEDED") throw new CatalogError(`run ${run.id} is ${run.status}: only a SUCCEEDED run can produce a model version`, "conflict");
					}
					await this.checkAssets(version);
					await this.claimUnique("model_version", `${version.model_id}\0${version.version}`, version.id, (holder) => `model ${version.model_id} already has a version ${version.version} (${holder})`);
					return await this.register(version, c.requestID);
				} catch (err) {
					return clientError(err);
				}
			},
			async "endpoints.register"(this: CatalogThis, c: Context<EndpointInput>) {
				const p = asCaller(c);
				try {
					return await this.register(newEndpoint(p, await this.store.get("model_version", p.model_version_id), new Date()), c.requestID);
				} catch (err) {
					return clientError(err);
				}
			},
			async "models.promote"(this: CatalogThis, c: Context<{ model_id: string; alias: string; version_id: string; actor: string; reason?: string }>) {
				const p = asCaller(c);
				try {
					const version = found(await this.store.get("model_version", p.version_id), "model version", p.version_id);
					const at = new Date();
					const { before, after } = await this.store.put("model", p.model_id, (m) => promote(found(m, "model", p.model_id), p.alias, version, p.actor, at, p.reason).model);
					if (after !== before) await this.aliasChanged(after, p.alias, c.requestID);
					return after;
				} catch (err) {
					return clientError(err);
				}
			},
			async "models.rollback"(this: CatalogThis, c: Context<{ model_id: string; alias: string; actor: string; reason?: string }>) {
				const p = asCaller(c);
				try {
					const at = new Date();
					const { after } = await this.store.put("model", p.model_id, (m) => rollback(found(m, "model", p.model_id), p.alias, p.actor, at, p.reason).model);
					await this.aliasChanged(after, p.alias, c.requestID);
					return after;
				} catch (err) {
					return clientError(err);
				}
			},
			async get(this: CatalogThis, c: Context<{ kind: EntityType; id: string }>) {
				const { kind, id } = c.params;
				return (await this.store.get(kind, id)) ?? clientError(new CatalogError(`${kind} ${id} not found`, "not_found"));
			},
			search(this: CatalogThis, c: Context<SearchQuery>) {
				return this.views.search.search(c.params);
			},
			async suggest(this: CatalogThis, c: Context<SuggestOptions & { prefix: string }>) {
				const { prefix, ...opts } = c.params;
				return { suggestions: await this.views.search.suggest(prefix, opts) };
			},
			"lineage.upstream"(this: CatalogThis, c: Context<TraversalParams>) {
				return this.views.lineage.graph.upstream(c.params.id, traversal(c.params)).catch(clientError);
			},
			"lineage.downstream"(this: CatalogThis, c: Context<TraversalParams>) {
				return this.views.lineage.graph.downstream(c.params.id, traversal(c.params)).catch(clientError);
			},
			"lineage.impact"(this: CatalogThis, c: Context<TraversalParams>) {
				return this.views.lineage.graph.impact(c.params.id, traversal(c.params)).catch(clientError);
			},
			async "lineage.export"(this: CatalogThis, c: Context<TraversalParams & { format: "json" | "openlineage" }>) {
				const graph = this.views.lineage.graph;
				if (c.params.format === "openlineage") return { events: await graph.exportOpenLineage(c.params.id, traversal(c.params)).catch(clientError) };
				return graph.exportJson(c.params.id, traversal(c.params)).catch(clientError);
			},
			rebuild(this: CatalogThis) {
				return this.views.rebuild();
			},
			check(this: CatalogThis) {
				return this.views.check();
			},
		},
		methods: {
			/**
			 * Writes the entity unless its id is taken, indexes it and announces it. The same content again returns
			 * the stored entity (and re-publishes its de-duplicated event, so a retry after a crash still announces it).
			 */
			async register(this: CatalogThis, entity: CatalogEntity, traceId: string | null): Promise<CatalogEntity> {
				const { kind, id } = entity;
				const other = await this.store.kindOf(id);
				if (other !== undefined && other !== kind) throw new CatalogError(`id ${id} is already taken by a ${other}`, "conflict");
				const { before, after } = await this.store.put(kind, id, (current) => current ?? entity);
				if (before !== undefined && registeredContent(before) !== registeredContent(entity)) {
					throw new CatalogError(`${kind} ${id} is already registered with other content`, "conflict");
				}
				await this.views.index(after);
				await this.publishEvent(
					CatalogEntityRegistered,
					{ kind, id, workspace: after.workspace },
					{ msgId: `catalog:${kind}:${id}:registered`, ...(traceId ? { traceId } : {}) },
				);
				return after;
			},
			async claimUnique(this: CatalogThis, scope: string, value: string, id: string, taken: (holder: string) => string): Promise<void> {
				const holder = await this.store.claim(scope, value, id);
				if (holder !== id) throw new CatalogError(taken(holder), "conflict");
			},
			/** An entity naming uploaded assets (`asset://<workspace>/<uid>`) must name stored ones, with their hashes. */
			async checkAssets(this: CatalogThis, entity: CatalogEntity): Promise<void> {
				const refs = assetRefs(entity);
				if (!refs.length) return;
				const known = new Map(await Promise.all(refs.map(async (r) => [r.uri, await this.store.getAsset(r.workspace, r.uid)] as const)));
				const problems = assetProblems(entity, known);
				if (problems.length) throw new CatalogError(`${entity.kind} ${entity.id}: ${problems.join("; ")}`, "invalid");
			},
			/** Every way a dataset version arrives: its assets checked, its label unique within its dataset, then registered. */
			async registerDatasetVersion(this: CatalogThis, version: DatasetVersion, traceId: string | null): Promise<CatalogEntity> {
				await this.checkAssets(version);
				await this.claimUnique("dataset_version", `${version.dataset_id}\0${version.version}`, version.id, (holder) => `dataset ${version.dataset_id} already has a version ${version.version} (${holder})`);
				return this.register(version, traceId);
			},
			/** A version's stage lives on its model: the versions an alias left and joined get new search documents. */
			async reindexVersions(this: CatalogThis, model: Model, versionIds: (string | undefined)[]): Promise<void> {
				for (const id of new Set(versionIds)) {
					const version = id === undefined ? undefined : await this.store.get("model_version", id);
					if (version) await this.views.search.upsert([toSearchDocument(version, model)]);
				}
			},
			/**
			 * A curated version as a version of its dataset, derived from the version the job was started from (or,
			 * when it named none, the dataset's newest registered version).
			 * Once stored it is only re-indexed and re-announced: a redelivery derives nothing again, so versions
			 * registered since cannot change it.
			 */
			async registerCurated(this: CatalogThis, e: CurationVersionCreated, traceId: string | null): Promise<CatalogEntity> {
				const dataset = await this.curatedDataset(e, traceId);
				const stored = await this.store.get("dataset_version", curatedVersionId(e, dataset));
				if (stored !== undefined) return this.register(stored, traceId);
				const source = e.source_version_id ? await this.curationSourceIn(e.source_version_id, e.workspace) : await this.guessCurationSource(dataset);
				const classes = e.class_distribution ?? (await curatedClasses(this.blobs, e.manifest_key)) ?? {};
				if (Object.keys(classes).length === 0) this.logger.warn(`catalog: curated version ${e.version_id} of ${e.dataset}: no class distribution in its manifest ${e.manifest_key}`);
				return this.registerDatasetVersion(curatedVersion(e, dataset, classes, source === undefined ? [] : [source], new Date()), traceId);
			},
			/**
			 * The named source version, unless it is another workspace's: lineage never crosses workspaces. One not
			 * registered yet is kept; its edge appears when it is.
			 */
			async curationSourceIn(this: CatalogThis, versionId: string, workspace: string): Promise<string | undefined> {
				const version = await this.store.get("dataset_version", versionId);
				if (version === undefined || version.workspace === workspace) return versionId;
				this.logger.warn(`catalog: curation source ${versionId} is in workspace ${version.workspace}, not ${workspace}; no derived_from edge`);
				return undefined;
			},
			/** Events of jobs started without `source_version_id` (and older events): the dataset's newest registered version. */
			async guessCurationSource(this: CatalogThis, dataset: Dataset): Promise<string | undefined> {
				const siblings = await this.views.lineage.graph.downstream(dataset.id, { depth: 1 });
				const versions = await Promise.all(siblings.edges.filter((edge) => edge.kind === "version_of").map((edge) => this.store.get("dataset_version", edge.to)));
				return curationSource(versions.filter((v) => v !== undefined));
			},
			/** The catalog dataset a curation's folder stands for: the one of that id in the workspace, else one registered for the folder. */
			async curatedDataset(this: CatalogThis, e: CurationVersionCreated, traceId: string | null): Promise<Dataset> {
				const named = namedDatasetId(e);
				const dataset = named === undefined ? undefined : await this.store.get("dataset", named);
				if (dataset?.workspace === e.workspace) return dataset;
				return (await this.register(folderDataset(e, new Date()), traceId)) as Dataset;
			},
			/**
			 * A dataset version an external producer announced: its dataset registered on first sight; one of that id in
			 * another workspace is refused (the announcement is dead-lettered with the reason).
			 */
			async registerIngested(this: CatalogThis, e: IngestReceived<DatasetVersionAnnounced>, traceId: string | null): Promise<CatalogEntity> {
				const p = e.payload;
				const existing = await this.store.get("dataset", p.dataset_id);
				if (existing && existing.workspace !== p.workspace) throw new CatalogError(`producer ${e.source} announced a version of dataset ${p.dataset_id} in workspace ${p.workspace}, but that dataset is in another workspace`, "invalid");
				const dataset = existing ?? ((await this.register(ingestedDataset(e, new Date()), traceId)) as Dataset);
				const stored = await this.store.get("dataset_version", ingestedVersionId(p));
				if (stored !== undefined) return this.register(stored, traceId);
				return this.registerDatasetVersion(ingestedVersion(e, dataset, new Date()), traceId);
			},
			/** Reindexes and announces the alias's last change; its msgId (the change's number) makes a re-publish a no-op. */
			async aliasChanged(this: CatalogThis, model: Model, alias: string, traceId: string | null): Promise<void> {
				const history = model.aliases[alias]!.history;
				const change = history.at(-1)!;
				await this.reindexVersions(model, [change.from, change.to]);
				await this.publishEvent(
					CatalogAliasChanged,
					{ ...change, workspace: model.workspace },
					{ msgId: `catalog:${model.id}:${alias}:${history.length}`, ...(traceId ? { traceId } : {}) },
				);
			},
		},
		durableEvents: [
			onEvent(IndexCuratedVersions, async function (this: CatalogThis, c) {
				await this.registerCurated(c.params, c.requestID);
			}),
			onEvent(IndexIngestedVersions, async function (this: CatalogThis, c) {
				await this.registerIngested(c.params, c.requestID);
			}),
			onEvent(LearnStoredAssets, async function (this: CatalogThis, c) {
				const { uid, workspace, sha256, size } = c.params;
				await this.store.putAsset({ uid, workspace, status: "STORED", sha256, size });
			}),
			onEvent(LearnRejectedAssets, async function (this: CatalogThis, c) {
				const { uid, workspace, reason } = c.params;
				await this.store.putAsset({ uid, workspace, status: "REJECTED", reason });
			}),
			onEvent(
				IndexRuns,
				function (this: CatalogThis, c) {
					// The newer copy wins, so a redelivered or late event leaves the stored run as it is.
					return this.runQueue.run(c.params.run_id, async () => {
						const { after } = await this.store.put("run", c.params.run_id, (current) => applyRunEvent(current, c.params));
						await this.views.index(after);
					});
				},
				{ concurrency: RUN_EVENT_CONCURRENCY },
			),
		],
		async started(this: CatalogThis) {
			this.store = await CatalogStore.open(busOf(this.broker).js, config.streamReplicas);
			this.blobs = openPlatformBlobs(config.assets);
			this.views = new CatalogViews(this.store, adapters);
			this.runQueue = new KeyedQueue();
			// Followed from before the rebuild reads the store: several instances keep the same views.
			const changes = await this.store.follow();
			this.changes = changes;
			const { entities } = await this.views.rebuild();
			this.logger.info(`catalog: ${entities} entities indexed from the store`);
			void (async () => {
				for await (const e of changes) {
					await this.views.apply(e).catch((err: Error) => this.logger.warn(`catalog: cannot index ${e.kind} ${e.id} written by another instance: ${err.message}`));
				}
			})().catch((err: Error) => this.logger.error(`catalog: stopped following the store; views of this instance miss other instances' writes until a restart: ${err.message}`));
		},
		async stopped(this: CatalogThis) {
			this.changes?.stop();
			await this.views?.search.close();
			await this.views?.lineage.graph.close();
			await adapters.close();
			this.blobs?.close?.();
		},
	};
}
