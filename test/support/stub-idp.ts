import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadJose, type CryptoKey, type JoseModule } from "../../services/authz/identity/jose";

/**
 * A minimal OpenID provider on a real HTTP server: discovery, authorize (done by the test, as a browser would),
 * token endpoint with the PKCE check, JWKS.
 */
export class StubIdp {
	readonly clientId = "savassan";
	issuer = "";
	private server!: Server;
	private jose!: JoseModule;
	private key!: CryptoKey;
	private readonly codes = new Map<string, { challenge: string; nonce: string; claims: Record<string, unknown>; signWith?: CryptoKey }>();

	async start(): Promise<void> {
		this.jose = await loadJose();
		const { privateKey, publicKey } = await this.jose.generateKeyPair("RS256");
		this.key = privateKey;
		const publicJwk = { ...(await this.jose.exportJWK(publicKey)), kid: "idp-1", alg: "RS256", use: "sig" };
		this.server = createServer((req, res) => {
			const send = (status: number, body: unknown): void => void res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
			if (req.url === "/.well-known/openid-configuration") {
				return send(200, { issuer: this.issuer, authorization_endpoint: `${this.issuer}/authorize`, token_endpoint: `${this.issuer}/token`, jwks_uri: `${this.issuer}/jwks` });
			}
			if (req.url === "/jwks") return send(200, { keys: [publicJwk] });
			if (req.url !== "/token" || req.method !== "POST") return send(404, { error: "not_found" });
			let body = "";
			req.on("data", (c: Buffer) => (body += c.toString()));
			req.on("end", async (): Promise<void> => {
				const form = new URLSearchParams(body);
				const grant = this.codes.get(form.get("code") ?? "");
				this.codes.delete(form.get("code") ?? "");
				if (!grant || form.get("client_id") !== this.clientId) return send(400, { error: "invalid_grant" });
				if (createHash("sha256").update(form.get("code_verifier") ?? "").digest("base64url") !== grant.challenge) return send(400, { error: "invalid_grant", error_description: "PKCE verification failed" });
				const now = Math.floor(Date.now() / 1000);
				// The test's claims go last, to make a token wrong in exactly one way.
				const claims = { iss: this.issuer, sub: "zoe-123", aud: this.clientId, iat: now, exp: now + 300, nonce: grant.nonce, email: "zoe@example.com", name: "Zoe", ...grant.claims };
				const idToken = await new this.jose.SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "idp-1" }).sign(grant.signWith ?? this.key);
				send(200, { access_token: "idp-access", token_type: "Bearer", id_token: idToken });
			});
		});
		await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
		this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
	}

	/** What the browser's visit to the authorize URL does: the user signs in, the IdP hands back a code. */
	authorize(url: string, claims: Record<string, unknown> = {}, signWith?: CryptoKey): string {
		const p = new URL(url).searchParams;
		assert.equal(p.get("code_challenge_method"), "S256");
		const code = `code-${this.codes.size}-${Math.random()}`;
		this.codes.set(code, { challenge: p.get("code_challenge")!, nonce: p.get("nonce")!, claims, signWith });
		return code;
	}

	async otherKey(): Promise<CryptoKey> {
		return (await this.jose.generateKeyPair("RS256")).privateKey;
	}

	stop(): Promise<void> {
		return new Promise((r) => this.server.close(() => r()));
	}
}
