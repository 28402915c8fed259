/**
 * The authz records in one JetStream KV bucket, each kind under its own key prefix (`users.<key>`, `policies.<key>`,
 * ...): one stream instead of thirteen, and every kind still listed on its own. Record keys hold characters KV keys
 * refuse (":" in "user:alice", "@" in e-mails, "|" in OIDC links), so each key is escaped byte by byte; the escape
 * keeps prefixes, which `list(prefix)` relies on.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { openBucket, valueOf } from "../../lib/kv";
import type { AuthzStores } from "./authz-context";
import type { RecordStore } from "./store";

export const AUTHZ_BUCKET = "authz";

const SAFE_BYTE = /[A-Za-z0-9_-]/;

/** Letters, digits, "_" and "-" stay; every other byte becomes "=" and two hex digits ("user:a" → "user=3aa"). */
export function escapeKey(key: string): string {
	let out = "";
	for (const byte of Buffer.from(key, "utf8")) {
		const ch = String.fromCharCode(byte);
		out += byte < 0x80 && SAFE_BYTE.test(ch) ? ch : `=${byte.toString(16).padStart(2, "0")}`;
	}
	return out;
}

/** The inverse of escapeKey: a key as its store was given it. */
export function unescapeKey(escaped: string): string {
	const bytes: number[] = [];
	for (let i = 0; i < escaped.length; i++) {
		if (escaped[i] === "=") {
			bytes.push(parseInt(escaped.slice(i + 1, i + 3), 16));
			i += 2;
		} else bytes.push(escaped.charCodeAt(i));
	}
	return Buffer.from(bytes).toString("utf8");
}

/** A bucket key → its record kind and the record's own key. */
export function recordKeyOf(kvKey: string): { kind: string; key: string } {
	const dot = kvKey.indexOf(".");
	const rest = kvKey.slice(dot + 1);
	return { kind: kvKey.slice(0, dot), key: rest === "=" ? "" : unescapeKey(rest) };
}

export class KvRecordStore<T> implements RecordStore<T> {
	constructor(
		private readonly kv: KV,
		/** The key prefix of this kind: a KV key token. */
		private readonly kind: string,
	) {}

	private keyOf(key: string): string {
		// An empty key would end in "." which KV refuses; "=" alone cannot come out of escapeKey for a real key.
		return `${this.kind}.${key === "" ? "=" : escapeKey(key)}`;
	}

	async get(key: string): Promise<T | undefined> {
		return valueOf<T>(await this.kv.get(this.keyOf(key)));
	}

	async put(key: string, value: T): Promise<void> {
		await this.kv.put(this.keyOf(key), JSON.stringify(value));
	}

	async delete(key: string): Promise<boolean> {
		const k = this.keyOf(key);
		if (valueOf<T>(await this.kv.get(k)) === undefined) return false;
		await this.kv.delete(k);
		return true;
	}

	async list(prefix = ""): Promise<T[]> {
		const wanted = `${this.kind}.${escapeKey(prefix)}`;
		const keys: string[] = [];
		for await (const k of await this.kv.keys(`${this.kind}.>`)) if (k.startsWith(wanted)) keys.push(k);
		const values = await Promise.all(keys.map(async (k) => valueOf<T>(await this.kv.get(k))));
		return values.filter((v): v is Awaited<T> => v !== undefined) as T[];
	}
}

/** Opens (or creates) the bucket. */
export function openAuthzBucket(js: JetStreamClient, replicas: number): Promise<KV> {
	return openBucket(js, AUTHZ_BUCKET, { history: 1, replicas, description: "Authorization: directory, policies, accounts, keys, sessions (authz)" });
}

/** One store per record kind; the kinds are the key prefixes kv-watch.ts dispatches on. */
export function kvAuthzStores(kv: KV): AuthzStores {
	const store = <T>(kind: string) => new KvRecordStore<T>(kv, kind);
	return {
		directory: {
			users: store("users"),
			groups: store("groups"),
			departments: store("departments"),
			workspaces: store("workspaces"),
			roles: store("roles"),
			bindings: store("bindings"),
		},
		policies: store("policies"),
		accounts: store("accounts"),
		attempts: store("attempts"),
		signingKeys: store("signing_keys"),
		tokens: { families: store("token_families"), denied: store("tokens_denied") },
		apiKeys: store("api_keys"),
		oidcPending: store("oidc_pending"),
		oidcLinks: store("oidc_links"),
	};
}
