/**
 * SSO through an OpenID Connect provider: authorization-code flow with PKCE. `begin` builds the authorize URL and
 * remembers state, nonce and verifier; `complete` exchanges the code at the token endpoint, verifies the ID token
 * against the provider's JWKS (signature, issuer, audience, expiry, nonce) and maps its claims to a local user.
 */
import { createHash, randomBytes } from "node:crypto";
import type { AuditSink } from "../audit/audit";
import { AuthzError } from "../errors";
import { systemClock, type Clock, type RecordStore } from "../store";
import { loadJose, type JWTPayload } from "./jose";
import { auditLogin } from "./login-audit";
import { reasonOf } from "./tokens";

export interface OidcConfig {
	issuer: string;
	authorization_endpoint: string;
	token_endpoint: string;
	jwks_uri: string;
	client_id: string;
	/** Sent as client_secret_post when set; public clients rely on PKCE alone. */
	client_secret?: string;
	redirect_uri: string;
	scopes?: string[];
}

export interface PendingLogin {
	state: string;
	nonce: string;
	code_verifier: string;
	created_at: number;
}

/** Claims → local user id (creating or linking the user as the platform sees fit). */
export type ClaimsMapper = (claims: JWTPayload & { iss: string; sub: string }) => Promise<string>;

const PENDING_TTL_MS = 10 * 60_000;
const random = () => randomBytes(32).toString("base64url");

/** The provider's endpoints from its discovery document. */
export async function discoverOidc(issuer: string, client: Pick<OidcConfig, "client_id" | "client_secret" | "redirect_uri" | "scopes">): Promise<OidcConfig> {
	const res = await fetch(new URL(".well-known/openid-configuration", issuer.endsWith("/") ? issuer : issuer + "/"));
	if (!res.ok) throw new Error(`OIDC discovery at ${issuer} answered ${res.status}`);
	const doc = (await res.json()) as Pick<OidcConfig, "issuer" | "authorization_endpoint" | "token_endpoint" | "jwks_uri">;
	return { ...client, issuer: doc.issuer, authorization_endpoint: doc.authorization_endpoint, token_endpoint: doc.token_endpoint, jwks_uri: doc.jwks_uri };
}

export class OidcLogin {
	private jwks: ReturnType<Awaited<ReturnType<typeof loadJose>>["createRemoteJWKSet"]> | undefined;

	constructor(
		private readonly config: OidcConfig,
		private readonly pending: RecordStore<PendingLogin>,
		private readonly mapUser: ClaimsMapper,
		private readonly audit: AuditSink,
		private readonly clock: Clock = systemClock,
	) {}

	async begin(): Promise<{ url: string; state: string }> {
		const login: PendingLogin = { state: random(), nonce: random(), code_verifier: random(), created_at: this.clock() };
		await this.pending.put(login.state, login);
		const url = new URL(this.config.authorization_endpoint);
		url.search = new URLSearchParams({
			response_type: "code",
			client_id: this.config.client_id,
			redirect_uri: this.config.redirect_uri,
			scope: (this.config.scopes ?? ["openid", "profile", "email"]).join(" "),
			state: login.state,
			nonce: login.nonce,
			code_challenge: createHash("sha256").update(login.code_verifier).digest("base64url"),
			code_challenge_method: "S256",
		}).toString();
		return { url: url.toString(), state: login.state };
	}

	/** The local user id; an AuthzError("unauthenticated") saying what was wrong otherwise. Audited either way. */
	async complete(code: string, state: string, meta: { source?: string; trace_id?: string } = {}): Promise<string> {
		const attempt = { via: "oidc" as const, source: meta.source, trace_id: meta.trace_id };
		try {
			const claims = await this.verifiedClaims(code, state);
			const userId = await this.mapUser(claims);
			auditLogin(this.audit, this.clock, { ...attempt, actor: userId, ok: true, reason: `ID token of ${claims.iss} verified`, username: claims.sub });
			return userId;
		} catch (err) {
			const reason = err instanceof AuthzError ? err.message : `The sign-in could not be completed: ${reasonOf(err)}.`;
			auditLogin(this.audit, this.clock, { ...attempt, actor: "anonymous", ok: false, reason });
			throw err instanceof AuthzError ? err : new AuthzError("unauthenticated", reason);
		}
	}

	private async verifiedClaims(code: string, state: string): Promise<JWTPayload & { iss: string; sub: string }> {
		const login = await this.pending.get(state);
		// One use only: a replayed callback finds nothing.
		if (login) await this.pending.delete(state);
		if (!login || this.clock() - login.created_at > PENDING_TTL_MS) throw new AuthzError("unauthenticated", "The sign-in was not started here or took too long; start again.");
		const idToken = await this.exchange(code, login.code_verifier);
		const jose = await loadJose();
		this.jwks ??= jose.createRemoteJWKSet(new URL(this.config.jwks_uri));
		let payload: JWTPayload;
		try {
			({ payload } = await jose.jwtVerify(idToken, this.jwks, { issuer: this.config.issuer, audience: this.config.client_id, currentDate: new Date(this.clock()), requiredClaims: ["sub", "exp", "iat"] }));
		} catch (err) {
			throw new AuthzError("unauthenticated", `The identity provider's ID token is not valid: ${reasonOf(err)}.`);
		}
		if (payload.nonce !== login.nonce) throw new AuthzError("unauthenticated", "The identity provider's ID token is not valid: its nonce does not match this sign-in.");
		return payload as JWTPayload & { iss: string; sub: string };
	}

	private async exchange(code: string, verifier: string): Promise<string> {
		const body = new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: this.config.redirect_uri, client_id: this.config.client_id, code_verifier: verifier });
		if (this.config.client_secret) body.set("client_secret", this.config.client_secret);
		const res = await fetch(this.config.token_endpoint, { method: "POST", body, headers: { accept: "application/json" } });
		const answer = (await res.json().catch(() => ({}))) as { id_token?: string; error?: string; error_description?: string };
		if (!res.ok || !answer.id_token) {
			const why = answer.error ? `${answer.error}${answer.error_description ? ` (${answer.error_description})` : ""}` : `status ${res.status}`;
			throw new AuthzError("unauthenticated", `The identity provider refused the sign-in: ${why}.`);
		}
		return answer.id_token;
	}
}
