/**
 * JWT access (1 h) and refresh (30 d) tokens. Refresh tokens rotate: each use returns a new pair and retires the
 * used one; presenting a retired refresh token again means it was stolen, so its whole family (every token issued
 * from that login) is revoked. Revocation is immediate: verifying checks the jti deny list and the family.
 */
import { randomUUID } from "node:crypto";
import type { AuditSink } from "../audit/audit";
import { auditRecord } from "../audit/audit";
import { AuthzError } from "../errors";
import { systemClock, type Clock, type RecordStore } from "../store";
import { ALG, type Keyring } from "./keyring";
import { VerifiedCache } from "./verified-cache";

export const ACCESS_TTL_S = 3600;
export const REFRESH_TTL_S = 30 * 24 * 3600;

export interface RefreshFamily {
	id: string;
	user_id: string;
	/** The only refresh token of the family that may still be used. */
	current_jti: string;
	expires_at: number;
	revoked_at?: string;
	revoked_reason?: string;
}

export interface DeniedToken {
	jti: string;
	/** After this (ms), the token is expired anyway and the entry can go. */
	expires_at: number;
}

export interface TokenStores {
	families: RecordStore<RefreshFamily>;
	denied: RecordStore<DeniedToken>;
}

export interface TokenPair {
	access_token: string;
	refresh_token: string;
	token_type: "Bearer";
	expires_in: number;
}

export interface AccessClaims {
	user_id: string;
	jti: string;
	family: string;
	expires_at: number;
}

interface Meta {
	trace_id?: string;
	source?: string;
}

type Kind = "access" | "refresh";

export class TokenService {
	/** Access tokens verified once, with the key that signed them; a revoked token id or session is refused from the cache too. */
	private readonly verified = new VerifiedCache<{ claims: AccessClaims; kid: string }>(({ claims }) => [claims.jti, claims.family]);

	constructor(
		private readonly keyring: Keyring,
		private readonly stores: TokenStores,
		private readonly audit: AuditSink,
		private readonly issuer = "savassan",
		private readonly clock: Clock = systemClock,
	) {}

	/** A new login: a new family. */
	async issue(userId: string, meta: Meta = {}): Promise<TokenPair> {
		const family: RefreshFamily = { id: randomUUID(), user_id: userId, current_jti: randomUUID(), expires_at: this.clock() + REFRESH_TTL_S * 1000 };
		await this.stores.families.put(family.id, family);
		this.record(userId, "token.issue", family.id, "success", "tokens issued", meta);
		return this.pair(family);
	}

	async refresh(refreshToken: string, meta: Meta = {}): Promise<TokenPair> {
		const claims = await this.verify(refreshToken, "refresh");
		const family = await this.stores.families.get(claims.family);
		if (!family || family.revoked_at) {
			this.record(claims.user_id, "token.refresh", claims.family, "failure", "refresh token of a revoked session", meta);
			throw new AuthzError("unauthenticated", "This session has been revoked; log in again.");
		}
		if (family.current_jti !== claims.jti) {
			await this.revokeFamily(family, "refresh token reused", meta);
			this.record(claims.user_id, "token.refresh", family.id, "failure", "refresh token reused: session revoked", meta);
			throw new AuthzError("unauthenticated", "This refresh token was already used; the session has been revoked for safety. Log in again.");
		}
		const next: RefreshFamily = { ...family, current_jti: randomUUID() };
		await this.stores.families.put(next.id, next);
		this.record(claims.user_id, "token.refresh", family.id, "success", "refresh token rotated", meta);
		return this.pair(next);
	}

	/** The access token's claims, or an AuthzError("unauthenticated") saying why not. */
	async verifyAccess(token: string): Promise<AccessClaims> {
		const cached = this.verified.get(token, this.clock());
		// A retired signing key ends its tokens: the full check below then says so.
		if (cached && this.keyring.verifying(cached.kid)) return cached.claims;
		const claims = await this.verify(token, "access");
		if (await this.stores.denied.get(claims.jti)) throw new AuthzError("unauthenticated", "This token has been revoked.");
		const family = await this.stores.families.get(claims.family);
		if (!family || family.revoked_at) throw new AuthzError("unauthenticated", "This session has been revoked; log in again.");
		this.verified.remember(token, { claims, kid: String(this.keyring.jose.decodeProtectedHeader(token).kid) }, claims.expires_at);
		return claims;
	}

	/** A revocation stored by another instance (seen on the bucket watch): cached verifications honour it. */
	revoked(change: { jti: string; expires_at: number } | RefreshFamily): void {
		if ("jti" in change) this.verified.revoke(change.jti, change.expires_at, this.clock());
		else if (change.revoked_at) this.verified.revoke(change.id, change.expires_at, this.clock());
	}

	/** Revokes one access token, or the whole session of a refresh token. */
	async revoke(token: string, actor: string, meta: Meta = {}): Promise<void> {
		const claims = await this.verify(token, undefined);
		if (claims.kind === "access") {
			await this.stores.denied.put(claims.jti, { jti: claims.jti, expires_at: claims.expires_at });
			this.revoked({ jti: claims.jti, expires_at: claims.expires_at });
			this.record(actor, "token.revoke", claims.jti, "success", `access token of ${claims.user_id} revoked`, meta);
		} else {
			const family = await this.stores.families.get(claims.family);
			if (family) await this.revokeFamily(family, `revoked by ${actor}`, meta);
		}
	}

	private async revokeFamily(family: RefreshFamily, reason: string, meta: Meta): Promise<void> {
		if (family.revoked_at) return;
		const after = { ...family, revoked_at: new Date(this.clock()).toISOString(), revoked_reason: reason };
		await this.stores.families.put(family.id, after);
		this.revoked(after);
		this.audit.append(auditRecord({ kind: "change", actor: family.user_id, action: "session.revoke", resource: `Session:${family.id}`, result: "success", reason, before: { revoked: false }, after: { revoked: true, reason }, source: meta.source, trace_id: meta.trace_id }, new Date(this.clock())));
	}

	private async pair(family: RefreshFamily): Promise<TokenPair> {
		const now = Math.floor(this.clock() / 1000);
		return {
			access_token: await this.sign({ sub: family.user_id, fam: family.id, typ: "access" }, randomUUID(), now, now + ACCESS_TTL_S),
			refresh_token: await this.sign({ sub: family.user_id, fam: family.id, typ: "refresh" }, family.current_jti, now, Math.floor(family.expires_at / 1000)),
			token_type: "Bearer",
			expires_in: ACCESS_TTL_S,
		};
	}

	private async sign(claims: Record<string, string>, jti: string, iat: number, exp: number): Promise<string> {
		const { kid, key } = this.keyring.signing();
		return new this.keyring.jose.SignJWT(claims).setProtectedHeader({ alg: ALG, kid }).setIssuer(this.issuer).setJti(jti).setIssuedAt(iat).setExpirationTime(exp).sign(key);
	}

	private async verify(token: string, kind: Kind | undefined): Promise<AccessClaims & { kind: Kind }> {
		const { jose } = this.keyring;
		try {
			const { payload } = await jose.jwtVerify(
				token,
				(header) => {
					const key = header.kid !== undefined ? this.keyring.verifying(header.kid) : undefined;
					if (!key) throw new Error("signed with an unknown or retired key");
					return key;
				},
				{ issuer: this.issuer, algorithms: [ALG], currentDate: new Date(this.clock()), requiredClaims: ["sub", "jti", "exp", "fam", "typ"] },
			);
			const typ = payload.typ as Kind;
			if (kind !== undefined && typ !== kind) throw new Error(`a ${typ} token, not a ${kind} token`);
			return { kind: typ, user_id: payload.sub!, jti: payload.jti!, family: String(payload.fam), expires_at: payload.exp! * 1000 };
		} catch (err) {
			throw new AuthzError("unauthenticated", `The token is not valid: ${reasonOf(err)}.`);
		}
	}

	private record(actor: string, action: string, family: string, result: "success" | "failure", reason: string, meta: Meta): void {
		this.audit.append(auditRecord({ kind: "token", actor, action, resource: `Session:${family}`, result, reason, source: meta.source, trace_id: meta.trace_id }, new Date(this.clock())));
	}
}

/** jose's error codes say what is wrong in terms a user can act on. */
export function reasonOf(err: unknown): string {
	const code = (err as { code?: string }).code;
	if (code === "ERR_JWT_EXPIRED") return "it has expired";
	if (code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") return "its signature does not verify";
	if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED") return `claim "${(err as { claim?: string }).claim}" is wrong`;
	if (code === "ERR_JWS_INVALID" || code === "ERR_JWT_INVALID") return "it is malformed";
	return err instanceof Error ? err.message : String(err);
}
