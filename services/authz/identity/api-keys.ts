/**
 * API keys: `sk_<id>_<secret>`, shown once. Only a SHA-256 of the secret is stored (the secret is 256 random bits,
 * so a slow hash adds nothing); the id finds the record, so verifying is one hash and a constant-time compare.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { auditRecord, type AuditSink } from "../audit/audit";
import type { ChangeMeta } from "../directory/model";
import { AuthzError } from "../errors";
import { systemClock, type Clock, type RecordStore } from "../store";
import { VerifiedCache } from "./verified-cache";

export interface ApiKeyRecord {
	id: string;
	user_id: string;
	name: string;
	/** Hex SHA-256 of the secret part. */
	hash: string;
	last4: string;
	created_at: string;
	last_used_at?: string;
	revoked_at?: string;
}

/** What lists show: everything but the hash, and the key masked as `sk_…abcd`. */
export type MaskedApiKey = Omit<ApiKeyRecord, "hash" | "last4"> & { masked: string };

const KEY = /^sk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** last_used_at is written at most this often per key, so a busy key does not turn every call into a write. */
const LAST_USED_RESOLUTION_MS = 60_000;

const sha256 = (s: string) => createHash("sha256").update(s).digest();

export class ApiKeys {
	/** Keys verified once (by their full text); a revoked key is refused from the cache too. */
	private readonly verified = new VerifiedCache<ApiKeyRecord>((r) => [r.id]);

	constructor(
		private readonly store: RecordStore<ApiKeyRecord>,
		private readonly audit: AuditSink,
		private readonly clock: Clock = systemClock,
	) {}

	/** The full key is in `key` and nowhere else, ever. */
	async create(userId: string, name: string, meta: ChangeMeta): Promise<{ key: string; record: MaskedApiKey }> {
		const id = randomBytes(8).toString("hex");
		const secret = randomBytes(32).toString("base64url");
		const key = `sk_${id}_${secret}`;
		const record: ApiKeyRecord = { id, user_id: userId, name, hash: sha256(secret).toString("hex"), last4: key.slice(-4), created_at: this.now() };
		await this.store.put(id, record);
		this.changed(meta, "apikey.create", record, undefined, masked(record));
		return { key, record: masked(record) };
	}

	async list(userId: string): Promise<MaskedApiKey[]> {
		return (await this.store.list()).filter((r) => r.user_id === userId).map(masked);
	}

	async get(id: string): Promise<MaskedApiKey | undefined> {
		const r = await this.store.get(id);
		return r && masked(r);
	}

	/** The key's owner and id; an AuthzError("unauthenticated") for a malformed, unknown, wrong or revoked key. */
	async verify(key: string): Promise<{ user_id: string; key_id: string }> {
		const now = this.clock();
		let record = this.verified.get(key, now);
		if (!record) {
			const m = KEY.exec(key);
			record = m ? await this.store.get(m[1]!) : undefined;
			if (!m || !record || !timingSafeEqual(sha256(m[2]!), Buffer.from(record.hash, "hex"))) throw new AuthzError("unauthenticated", "The API key is not valid.");
			if (record.revoked_at) throw new AuthzError("unauthenticated", "The API key has been revoked.");
		}
		if (!record.last_used_at || now - Date.parse(record.last_used_at) >= LAST_USED_RESOLUTION_MS) {
			record = { ...record, last_used_at: new Date(now).toISOString() };
			await this.store.put(record.id, record);
		}
		// Keys do not expire; a revocation (here or seen from another instance) removes it.
		this.verified.remember(key, record, Number.MAX_SAFE_INTEGER);
		return { user_id: record.user_id, key_id: record.id };
	}

	async revoke(id: string, meta: ChangeMeta): Promise<void> {
		const before = await this.store.get(id);
		if (!before) throw new AuthzError("not_found", `API key ${id} does not exist.`);
		if (before.revoked_at) return;
		const after = { ...before, revoked_at: this.now() };
		await this.store.put(id, after);
		this.revoked(after);
		this.changed(meta, "apikey.revoke", after, masked(before), masked(after));
	}

	/** A revocation stored by another instance (seen on the bucket watch): cached verifications honour it. */
	revoked(record: ApiKeyRecord): void {
		if (record.revoked_at) this.verified.revoke(record.id, Number.MAX_SAFE_INTEGER, this.clock());
	}

	private now(): string {
		return new Date(this.clock()).toISOString();
	}

	private changed(meta: ChangeMeta, action: string, r: ApiKeyRecord, before: MaskedApiKey | undefined, after: MaskedApiKey): void {
		this.audit.append(auditRecord({ kind: "change", actor: meta.actor, action, resource: `ApiKey:${r.id}`, result: "success", reason: `${action} by ${meta.actor} for ${r.user_id}`, before, after, trace_id: meta.trace_id }, new Date(this.clock())));
	}
}

function masked(r: ApiKeyRecord): MaskedApiKey {
	const { hash: _hash, last4, ...rest } = r;
	return { ...rest, masked: `sk_…${last4}` };
}
