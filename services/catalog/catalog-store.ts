import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { compareAndSet, createOrGet, openBucket, valueOf } from "../../lib/kv";
import { createHash } from "node:crypto";
import type { KnownAsset } from "./registry/asset-refs";
import { CatalogError, type CatalogEntity } from "./registry/entities";
import { ENTITY_TYPES, type EntityType } from "./search/search-port";

/**
 * Catalog entities in the JetStream KV bucket `catalog`, key `<kind>.<id>`: the catalog's source of truth (the
 * search index and the lineage graph are views rebuilt from it). Every write is a create-if-absent or a
 * compare-and-set on the key's revision, so two writers never overwrite each other.
 */

export const CATALOG_BUCKET = "catalog";

/** Uniqueness claims (a version label within its dataset…) live beside the entities under this prefix. */
const CLAIM_PREFIX = "claim";
/** Uploaded assets as the assets context's events told them (`asset.<workspace>.<uid>`): not entities either. */
const ASSET_PREFIX = "asset";

const isEntityKey = (key: string) => !key.startsWith(`${CLAIM_PREFIX}.`) && !key.startsWith(`${ASSET_PREFIX}.`);

type EntityOf<K extends EntityType> = Extract<CatalogEntity, { kind: K }>;

export interface PutResult<T> {
	/** The stored entity before the change; undefined when the key was created. */
	before?: T;
	after: T;
}

export function entityKey(kind: EntityType, id: string): string {
	return `${kind}.${id}`;
}

/** What `follow` yields: stored entities as they change. */
export interface EntityChanges extends AsyncIterable<CatalogEntity> {
	stop(): void;
}

/** The entity a watched entry holds; undefined for claims and deletions (the catalog deletes nothing itself). */
function entityOf(e: KvWatchEntry): CatalogEntity | undefined {
	if (!isEntityKey(e.key) || e.operation !== "PUT") return undefined;
	return e.json<CatalogEntity>();
}

export class CatalogStore {
	private constructor(private readonly kv: KV) {}

	static async open(js: JetStreamClient, replicas: number): Promise<CatalogStore> {
		const kv = await openBucket(js, CATALOG_BUCKET, { history: 5, replicas, description: "Catalog entities (catalog)" });
		return new CatalogStore(kv);
	}

	async get<K extends EntityType>(kind: K, id: string): Promise<EntityOf<K> | undefined> {
		return valueOf<EntityOf<K>>(await this.kv.get(entityKey(kind, id)));
	}

	/** The kind an id is stored under, if any: ids are unique across kinds (search and lineage key on them). */
	async kindOf(id: string): Promise<EntityType | undefined> {
		const hits = await Promise.all(ENTITY_TYPES.map(async (k) => ((await this.get(k, id)) ? k : undefined)));
		return hits.find((k) => k !== undefined);
	}

	/**
	 * Creates the entity when absent, else applies `change` to the stored one and writes it back if the key did
	 * not change meanwhile (otherwise re-reads and re-applies: `change` must be pure). Returning the given entity
	 * unchanged writes nothing.
	 */
	async put<K extends EntityType>(kind: K, id: string, change: (current: EntityOf<K> | undefined) => EntityOf<K>): Promise<PutResult<EntityOf<K>>> {
		const key = entityKey(kind, id);
		const { current, written } = await compareAndSet<EntityOf<K>>(this.kv, key, (stored) => {
			const next = change(stored);
			if (next === stored) return undefined;
			if (next.kind !== kind || next.id !== id) throw new CatalogError(`cannot store ${next.kind} ${next.id} under ${key}`, "invalid");
			return next;
		});
		// Nothing written: `change` returned the stored entity, which therefore exists.
		if (!written) return { before: current, after: current! };
		return { ...(current === undefined ? {} : { before: current }), after: written };
	}

	/**
	 * Claims a unique name (`scope` + `value`) for `holder`; returns who holds it (the holder itself, or the
	 * one that claimed it first). Values are hashed: labels may hold characters a key may not.
	 */
	async claim(scope: string, value: string, holder: string): Promise<string> {
		const key = `${CLAIM_PREFIX}.${scope}.${createHash("sha256").update(value).digest("hex").slice(0, 40)}`;
		const stored = await createOrGet(this.kv, key, holder);
		return stored.created ? holder : stored.entry.string();
	}

	/**
	 * Every entity written from now on, by any instance, in the order written. Started before a rebuild reads the
	 * store, so nothing written in between is missed (what the rebuild already saw may come again: indexing is
	 * idempotent).
	 */
	async follow(): Promise<EntityChanges> {
		const watch = await this.kv.watch({ include: "updates" });
		return {
			async *[Symbol.asyncIterator]() {
				for await (const e of watch) {
					const entity = entityOf(e);
					if (entity) yield entity;
				}
			},
			stop: () => watch.stop(),
		};
	}

	/** Records what the assets context said of an asset; a repeated event writes the same. */
	async putAsset(asset: KnownAsset): Promise<void> {
		await this.kv.put(`${ASSET_PREFIX}.${asset.workspace}.${asset.uid}`, JSON.stringify(asset));
	}

	async getAsset(workspace: string, uid: string): Promise<KnownAsset | undefined> {
		return valueOf<KnownAsset>(await this.kv.get(`${ASSET_PREFIX}.${workspace}.${uid}`));
	}

	/** Every stored entity (for rebuilds and the drift check). */
	async list(): Promise<CatalogEntity[]> {
		const keys: string[] = [];
		for await (const k of await this.kv.keys()) if (isEntityKey(k)) keys.push(k);
		const entries = await Promise.all(keys.sort().map((k) => this.kv.get(k)));
		return entries.map((e) => valueOf<CatalogEntity>(e)).filter((e) => e !== undefined);
	}
}
