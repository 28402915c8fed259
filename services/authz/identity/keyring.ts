/**
 * Token signing keys (Ed25519), each with a key id that tokens name in their header. Rotating adds a key and signs
 * with it from then on; older keys still verify until retired, so rotation logs nobody out.
 */
import { randomUUID } from "node:crypto";
import { systemClock, type Clock, type RecordStore } from "../store";
import { loadJose, type CryptoKey, type JWK, type JoseModule } from "./jose";

export interface SigningKeyRecord {
	kid: string;
	/** Private JWK: the store holding these must be as protected as a password store. */
	private_jwk: JWK;
	created_at: string;
}

export const ALG = "EdDSA";

interface LoadedKey {
	record: SigningKeyRecord;
	privateKey: CryptoKey;
	publicKey: CryptoKey;
	publicJwk: JWK;
}

export class Keyring {
	private readonly keys = new Map<string, LoadedKey>();

	private constructor(
		readonly jose: JoseModule,
		private readonly store: RecordStore<SigningKeyRecord>,
		private readonly clock: Clock,
	) {}

	/** Loads the stored keys; creates the first one when there is none. */
	static async open(store: RecordStore<SigningKeyRecord>, clock: Clock = systemClock): Promise<Keyring> {
		const ring = new Keyring(await loadJose(), store, clock);
		for (const record of await store.list()) await ring.load(record);
		if (!ring.keys.size) await ring.rotate();
		return ring;
	}

	/** A new key that signs from now on; returns its kid. */
	async rotate(): Promise<string> {
		const { privateKey } = await this.jose.generateKeyPair(ALG, { crv: "Ed25519", extractable: true });
		const record: SigningKeyRecord = { kid: randomUUID(), private_jwk: await this.jose.exportJWK(privateKey), created_at: new Date(this.clock()).toISOString() };
		await this.store.put(record.kid, record);
		await this.load(record);
		return record.kid;
	}

	/** Tokens signed with this key stop verifying. */
	async retire(kid: string): Promise<void> {
		if (this.keys.size === 1 && this.keys.has(kid)) throw new Error("the last signing key cannot be retired; rotate first");
		await this.store.delete(kid);
		this.keys.delete(kid);
	}

	/** The newest key. */
	signing(): { kid: string; key: CryptoKey } {
		let newest: LoadedKey | undefined;
		for (const k of this.keys.values()) if (!newest || k.record.created_at >= newest.record.created_at) newest = k;
		return { kid: newest!.record.kid, key: newest!.privateKey };
	}

	verifying(kid: string): CryptoKey | undefined {
		return this.keys.get(kid)?.publicKey;
	}

	/** Public keys, for services that verify tokens themselves. */
	jwks(): { keys: JWK[] } {
		return { keys: [...this.keys.values()].map((k) => k.publicJwk) };
	}

	private async load(record: SigningKeyRecord): Promise<void> {
		const { d: _private, ...publicJwk } = record.private_jwk;
		const full = { ...publicJwk, kid: record.kid, alg: ALG, use: "sig" };
		this.keys.set(record.kid, {
			record,
			privateKey: (await this.jose.importJWK(record.private_jwk, ALG)) as CryptoKey,
			publicKey: (await this.jose.importJWK(full, ALG)) as CryptoKey,
			publicJwk: full,
		});
	}
}
