import type { JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { createHash } from "node:crypto";
import { CatalogError, type CatalogEntity } from "./registry/entities";
import { ENTITY_TYPES, type EntityType } from "./search/search-port";

/**
 * Catalog entities in the JetStream KV bucket `catalog`, key `<kind>.<id>`: the catalog's source of truth (the
 * search index and the lineage graph are views rebuilt from it). Every write is a create-if-absent or a
 * compare-and-set on the key's revision, so two writers never overwrite each other.
 *
 * The KV plumbing (create/CAS retry) is written here rather than shared with execution's RunStore for now.
 */

export const CATALOG_BUCKET = "catalog";

/** Uniqueness claims (a version label within its dataset…) live beside the entities under this prefix. */
const CLAIM_PREFIX = "claim";
const MAX_CAS_ATTEMPTS = 20;

type EntityOf<K extends EntityType> = Extract<CatalogEntity, { kind: K }>;

export interface PutResult<T> {
	/** The stored entity before the change; undefined when the key was created. */
	before?: T;
	after: T;
}

function isCasConflict(err: unknown): boolean {
	return /wrong last sequence|key exists/i.test((err as Error)?.message ?? "");
}

export function entityKey(kind: EntityType, id: string): string {
	return `${kind}.${id}`;
}

export class CatalogStore {
	private constructor(private readonly kv: KV) {}

	static async open(js: JetStreamClient, replicas: number): Promise<CatalogStore> {
		const kv = await new Kvm(js).create(CATALOG_BUCKET, { history: 5, replicas, description: "Catalog entities (catalog)" });
		return new CatalogStore(kv);
	}

	async get<K extends EntityType>(kind: K, id: string): Promise<EntityOf<K> | undefined> {
		const e = await this.kv.get(entityKey(kind, id));
		return e && e.operation === "PUT" ? e.json<EntityOf<K>>() : undefined;
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
		for (let attempt = 1; ; attempt++) {
			const entry = await this.kv.get(key);
			const current = entry && entry.operation === "PUT" ? entry.json<EntityOf<K>>() : undefined;
			const next = change(current);
			if (next === current) return { before: current, after: next };
			if (next.kind !== kind || next.id !== id) throw new CatalogError(`cannot store ${next.kind} ${next.id} under ${key}`, "invalid");
			try {
				// A deleted key still has a revision: update on it, so a concurrent re-create is caught too.
				if (!entry) await this.kv.create(key, JSON.stringify(next));
				else await this.kv.update(key, JSON.stringify(next), entry.revision);
				return { ...(current === undefined ? {} : { before: current }), after: next };
			} catch (err) {
				if (!isCasConflict(err) || attempt >= MAX_CAS_ATTEMPTS) throw err;
			}
		}
	}

	/**
	 * Claims a unique name (`scope` + `value`) for `holder`; returns who holds it (the holder itself, or the
	 * one that claimed it first). Values are hashed: labels may hold characters a key may not.
	 */
	async claim(scope: string, value: string, holder: string): Promise<string> {
		const key = `${CLAIM_PREFIX}.${scope}.${createHash("sha256").update(value).digest("hex").slice(0, 40)}`;
		try {
			await this.kv.create(key, holder);
			return holder;
		} catch (err) {
			if (!isCasConflict(err)) throw err;
			const e = await this.kv.get(key);
			return e && e.operation === "PUT" ? e.string() : holder;
		}
	}

	/** Every stored entity (for rebuilds and the drift check). */
	async list(): Promise<CatalogEntity[]> {
		const keys: string[] = [];
		for await (const k of await this.kv.keys()) if (!k.startsWith(`${CLAIM_PREFIX}.`)) keys.push(k);
		const entries = await Promise.all(keys.sort().map((k) => this.kv.get(k)));
		return entries.filter((e) => e !== null && e.operation === "PUT").map((e) => e!.json<CatalogEntity>());
	}
}
