/**
 * Identity: password logins with throttling and lock-out, JWT access/refresh tokens with rotation, reuse detection
 * and revocation, signing-key rotation, API keys, and OIDC sign-in against a stub IdP (a real HTTP server that
 * signs ID tokens with a key whose JWKS it serves). Every login and change must leave an audit record.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConfigError, loadConfig } from "../lib/config";
import { MemoryAuditLog } from "../services/authz/audit/memory-audit";
import { openAuthz, type Authz } from "../services/authz/authz-context";
import { AuthzError } from "../services/authz/errors";
import { OidcLogin } from "../services/authz/identity/oidc";
import { linkedUsers, type OidcLink } from "../services/authz/identity/oidc-users";
import { argon2Hashing } from "../services/authz/identity/passwords";
import { MemoryStore } from "../services/authz/store";
import { StubIdp } from "./support/stub-idp";

const T0 = Date.parse("2026-03-01T00:00:00Z");
const meta = { actor: "root" };
// Cheap Argon2 parameters: the tests check behaviour, not cost.
const passwords = argon2Hashing({ memoryCost: 1024, timeCost: 1 });

function unauthenticated(message: RegExp) {
	return (err: unknown) => {
		assert.ok(err instanceof AuthzError, `expected an AuthzError, got ${String(err)}`);
		assert.equal(err.code, "unauthenticated");
		assert.match(err.message, message);
		return true;
	};
}

async function world(clock: () => number): Promise<{ authz: Authz; audit: MemoryAuditLog }> {
	const audit = new MemoryAuditLog();
	const authz = await openAuthz({ audit, clock, passwords, throttle: { maxFailures: 3, windowMs: 60_000, lockMs: 300_000 } });
	for (const id of ["ana", "ben"]) await authz.directory.putUser({ id, name: id }, meta);
	await authz.accounts.setPassword("ana", "Ana", "correct horse battery", meta);
	await authz.accounts.setPassword("ben", "ben", "another good passphrase", meta);
	return { authz, audit };
}

describe("authz identity: password logins", () => {
	let now = T0;
	let authz: Authz;
	let audit: MemoryAuditLog;
	before(async () => ({ authz, audit } = await world(() => now)));

	it("logs in with the right password (any case of the username), audited, never the password", async () => {
		assert.equal(await authz.accounts.login({ username: "ANA", password: "correct horse battery", source: "10.0.0.1", trace_id: "ok-1" }), "ana");
		const [rec] = audit.query({ trace_id: "ok-1" });
		assert.deepEqual([rec?.kind, rec?.action, rec?.actor, rec?.result, rec?.source], ["login", "login.password", "ana", "success", "10.0.0.1"]);
		assert.doesNotMatch(JSON.stringify(audit.query({})), /correct horse|another good|\$argon2/);
		await assert.rejects(authz.accounts.setPassword("ana", "ana", "short", meta), /at least 12 characters/);
	});

	it("locks an account after 3 failures in the window, whatever the password, and unlocks after the period", async () => {
		for (let i = 0; i < 3; i++) await assert.rejects(authz.accounts.login({ username: "ana", password: `wrong ${i}`, source: `10.0.1.${i}` }), unauthenticated(/^Wrong username or password\.$/));
		await assert.rejects(authz.accounts.login({ username: "ana", password: "correct horse battery", source: "10.0.2.1", trace_id: "locked" }), (err: unknown) => err instanceof AuthzError && err.code === "locked" && /try again after 2026-03-01T00:05:00\.000Z/.test(err.message));
		assert.equal(audit.query({ trace_id: "locked" })[0]?.result, "failure");
		now += 299_000;
		await assert.rejects(authz.accounts.login({ username: "ana", password: "correct horse battery", source: "10.0.2.1" }), /Too many failed logins/);
		now += 1_000;
		assert.equal(await authz.accounts.login({ username: "ana", password: "correct horse battery", source: "10.0.2.1" }), "ana");
	});

	it("counts failures only within the window", async () => {
		for (let i = 0; i < 2; i++) await assert.rejects(authz.accounts.login({ username: "ben", password: "nope", source: `10.0.3.${i}` }));
		now += 61_000;
		for (let i = 0; i < 2; i++) await assert.rejects(authz.accounts.login({ username: "ben", password: "nope", source: `10.0.4.${i}` }));
		assert.equal(await authz.accounts.login({ username: "ben", password: "another good passphrase", source: "10.0.5.1" }), "ben");
	});

	it("locks a source that guesses across accounts, not the accounts for other sources", async () => {
		for (const username of ["ana", "ben", "ghost"]) await assert.rejects(authz.accounts.login({ username, password: "guess", source: "6.6.6.6" }), unauthenticated(/Wrong username or password/));
		await assert.rejects(authz.accounts.login({ username: "ben", password: "another good passphrase", source: "6.6.6.6" }), /Too many failed logins/);
		assert.equal(await authz.accounts.login({ username: "ben", password: "another good passphrase", source: "10.0.6.1" }), "ben");
		const failures = audit.query({ kind: "login", result: "failure" }).filter((r) => r.source === "6.6.6.6");
		assert.equal(failures.length, 4);
		assert.ok(failures.some((r) => r.actor === "anonymous" && r.reason === "unknown username"));
	});
});

describe("authz identity: tokens", () => {
	let now = T0;
	let authz: Authz;
	let audit: MemoryAuditLog;
	before(async () => ({ authz, audit } = await world(() => now)));

	it("issues access and refresh tokens that verify, with 1 h / 30 d lifetimes", async () => {
		const pair = await authz.tokens.issue("ana", { trace_id: "issue" });
		assert.equal(pair.expires_in, 3600);
		const claims = await authz.tokens.verifyAccess(pair.access_token);
		assert.equal(claims.user_id, "ana");
		assert.equal(claims.expires_at, T0 + 3600_000);
		const refreshExp = (JSON.parse(Buffer.from(pair.refresh_token.split(".")[1]!, "base64url").toString()) as { exp: number }).exp;
		assert.equal(refreshExp * 1000, T0 + 30 * 24 * 3600_000);
		await assert.rejects(authz.tokens.verifyAccess(pair.refresh_token), unauthenticated(/a refresh token, not a access token/));
		now += 3600_000 + 1_000;
		await assert.rejects(authz.tokens.verifyAccess(pair.access_token), unauthenticated(/The token is not valid: it has expired\./));
		now = T0;
		assert.equal(audit.query({ trace_id: "issue" })[0]?.action, "token.issue");
	});

	it("rejects a tampered token and one signed with a retired key; rotation keeps older tokens valid", async () => {
		const pair = await authz.tokens.issue("ana");
		const [h, p, s] = pair.access_token.split(".");
		const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, "base64url").toString()), sub: "root" })).toString("base64url");
		await assert.rejects(authz.tokens.verifyAccess(`${h}.${forged}.${s}`), unauthenticated(/its signature does not verify/));
		const oldKid = authz.keyring.signing().kid;
		const newKid = await authz.keyring.rotate();
		assert.notEqual(newKid, oldKid);
		assert.equal((await authz.tokens.verifyAccess(pair.access_token)).user_id, "ana");
		const fresh = await authz.tokens.issue("ana");
		assert.equal((JSON.parse(Buffer.from(fresh.access_token.split(".")[0]!, "base64url").toString()) as { kid: string }).kid, newKid);
		assert.equal(authz.keyring.jwks().keys.length, 2);
		await authz.keyring.retire(oldKid);
		await assert.rejects(authz.tokens.verifyAccess(pair.access_token), unauthenticated(/unknown or retired key/));
		assert.equal((await authz.tokens.verifyAccess(fresh.access_token)).user_id, "ana");
	});

	it("rotates refresh tokens; reusing one revokes the whole session at once", async () => {
		const first = await authz.tokens.issue("ben");
		const second = await authz.tokens.refresh(first.refresh_token, { trace_id: "rotate" });
		assert.notEqual(second.refresh_token, first.refresh_token);
		assert.equal((await authz.tokens.verifyAccess(second.access_token)).user_id, "ben");
		assert.equal(audit.query({ trace_id: "rotate" })[0]?.reason, "refresh token rotated");
		await assert.rejects(authz.tokens.refresh(first.refresh_token, { trace_id: "reuse" }), unauthenticated(/already used; the session has been revoked/));
		// Everything of that session stops working, including the legitimately rotated tokens.
		await assert.rejects(authz.tokens.verifyAccess(second.access_token), unauthenticated(/session has been revoked/));
		await assert.rejects(authz.tokens.verifyAccess(first.access_token), unauthenticated(/session has been revoked/));
		await assert.rejects(authz.tokens.refresh(second.refresh_token), unauthenticated(/session has been revoked/));
		const reuse = audit.query({ trace_id: "reuse" });
		assert.deepEqual(reuse.map((r) => [r.action, r.result]).sort(), [["session.revoke", "success"], ["token.refresh", "failure"]]);
		// Another session of the same user is untouched.
		const other = await authz.tokens.issue("ben");
		assert.equal((await authz.tokens.verifyAccess(other.access_token)).user_id, "ben");
	});

	it("revokes an access token, or a session by its refresh token, effective immediately", async () => {
		const pair = await authz.tokens.issue("ana");
		const sibling = await authz.tokens.refresh(pair.refresh_token);
		await authz.tokens.revoke(pair.access_token, "ana", { trace_id: "revoke-access" });
		await assert.rejects(authz.tokens.verifyAccess(pair.access_token), unauthenticated(/This token has been revoked/));
		assert.equal((await authz.tokens.verifyAccess(sibling.access_token)).user_id, "ana");
		await authz.tokens.revoke(sibling.refresh_token, "ana");
		await assert.rejects(authz.tokens.verifyAccess(sibling.access_token), unauthenticated(/session has been revoked/));
		await assert.rejects(authz.tokens.refresh(sibling.refresh_token), unauthenticated(/session has been revoked/));
		assert.equal(audit.query({ trace_id: "revoke-access" })[0]?.action, "token.revoke");
	});
});

describe("authz identity: API keys", () => {
	let now = T0;
	let authz: Authz;
	let audit: MemoryAuditLog;
	before(async () => ({ authz, audit } = await world(() => now)));

	it("shows a key once, lists it masked, verifies it with last_used_at, and stops it at once on revoke", async () => {
		const { key, record } = await authz.apiKeys.create("ana", "ci", { actor: "ana", trace_id: "key-create" });
		assert.match(key, /^sk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
		assert.equal(record.masked, `sk_…${key.slice(-4)}`);
		const [listed] = await authz.apiKeys.list("ana");
		assert.deepEqual(Object.keys(listed!).sort(), ["created_at", "id", "masked", "name", "user_id"]);
		assert.deepEqual(await authz.apiKeys.list("ben"), []);
		now += 5_000;
		assert.deepEqual(await authz.apiKeys.verify(key), { user_id: "ana", key_id: record.id });
		assert.equal((await authz.apiKeys.get(record.id))?.last_used_at, new Date(T0 + 5_000).toISOString());
		const wrongSecret = key.slice(0, -1) + (key.endsWith("A") ? "B" : "A");
		await assert.rejects(authz.apiKeys.verify(wrongSecret), unauthenticated(/^The API key is not valid\.$/));
		await assert.rejects(authz.apiKeys.verify("sk_nope"), unauthenticated(/not valid/));
		await authz.apiKeys.revoke(record.id, { actor: "ana", trace_id: "key-revoke" });
		await assert.rejects(authz.apiKeys.verify(key), unauthenticated(/has been revoked/));
		const [created] = audit.query({ trace_id: "key-create" });
		const [revoked] = audit.query({ trace_id: "key-revoke" });
		assert.equal(created?.resource, `ApiKey:${record.id}`);
		assert.deepEqual([(revoked?.before as { revoked_at?: string }).revoked_at, typeof (revoked?.after as { revoked_at?: string }).revoked_at], [undefined, "string"]);
		assert.ok(!JSON.stringify(audit.query({})).includes(key.split("_")[2]!), "the secret never reaches the audit log");
	});
});

describe("authz identity: OIDC sign-in against a stub IdP", () => {
	const idp = new StubIdp();
	let authz: Authz;
	let audit: MemoryAuditLog;
	let oidc: OidcLogin;
	let links: MemoryStore<OidcLink>;

	before(async () => {
		await idp.start();
		({ authz, audit } = await world(Date.now));
		links = new MemoryStore<OidcLink>();
		const config = { issuer: idp.issuer, authorization_endpoint: `${idp.issuer}/authorize`, token_endpoint: `${idp.issuer}/token`, jwks_uri: `${idp.issuer}/jwks`, client_id: idp.clientId, redirect_uri: "http://127.0.0.1:8080/auth/callback" };
		oidc = new OidcLogin(config, new MemoryStore(), linkedUsers(authz.directory, links), audit);
	});
	after(() => idp.stop());

	it("builds the authorize URL, exchanges the code with PKCE, verifies the ID token and links one local user", async () => {
		const { url, state } = await oidc.begin();
		const p = new URL(url).searchParams;
		assert.ok(url.startsWith(`${idp.issuer}/authorize?`));
		assert.deepEqual([p.get("response_type"), p.get("client_id"), p.get("redirect_uri"), p.get("scope"), p.get("state")], ["code", "savassan", "http://127.0.0.1:8080/auth/callback", "openid profile email", state]);
		const userId = await oidc.complete(idp.authorize(url), state, { trace_id: "oidc-ok", source: "10.9.9.9" });
		assert.match(userId, /^oidc-[0-9a-f]{16}$/);
		assert.deepEqual(await authz.directory.getUser(userId), { id: userId, name: "Zoe", email: "zoe@example.com", groups: [] });
		const again = await oidc.begin();
		assert.equal(await oidc.complete(idp.authorize(again.url), again.state), userId, "the same IdP identity maps to the same user");
		assert.equal((await links.list()).length, 1);
		const [rec] = audit.query({ trace_id: "oidc-ok" });
		assert.deepEqual([rec?.action, rec?.result, rec?.actor, rec?.source], ["login.oidc", "success", userId, "10.9.9.9"]);
		// The callback cannot be replayed.
		await assert.rejects(oidc.complete("any", state), unauthenticated(/not started here or took too long/));
	});

	const refused: Array<[string, (url: string) => Promise<string>, RegExp]> = [
		["wrong audience", async (url) => idp.authorize(url, { aud: "someone-else" }), /ID token is not valid: claim "aud" is wrong/],
		["expired", async (url) => idp.authorize(url, { exp: Math.floor(Date.now() / 1000) - 120, iat: Math.floor(Date.now() / 1000) - 600 }), /ID token is not valid: it has expired/],
		["bad signature", async (url) => idp.authorize(url, {}, await idp.otherKey()), /ID token is not valid: its signature does not verify/],
		["wrong nonce", async (url) => idp.authorize(url, { nonce: "not-the-one" }), /its nonce does not match/],
		["wrong issuer", async (url) => idp.authorize(url, { iss: "https://evil.example" }), /claim "iss" is wrong/],
		["PKCE verifier mismatch", async (url) => idp.authorize(url.replace(/code_challenge=[^&]+/, "code_challenge=forged")), /refused the sign-in: invalid_grant \(PKCE verification failed\)/],
	];
	for (const [name, code, message] of refused) {
		it(`refuses an ID token: ${name}, audited`, async () => {
			const { url, state } = await oidc.begin();
			await assert.rejects(oidc.complete(await code(url), state, { trace_id: `oidc-${name}` }), unauthenticated(message));
			const [rec] = audit.query({ trace_id: `oidc-${name}` });
			assert.deepEqual([rec?.action, rec?.result, rec?.actor], ["login.oidc", "failure", "anonymous"]);
			assert.match(rec!.reason, message);
		});
	}
});

describe("authz identity: OIDC client configuration (AUTHZ_OIDC_*)", () => {
	const full = { AUTHZ_OIDC_ISSUER: "https://idp.example", AUTHZ_OIDC_CLIENT_ID: "savassan", AUTHZ_OIDC_REDIRECT_URL: "https://savassan.example/auth/callback" };
	const problems = (env: Record<string, string>) => {
		try {
			loadConfig(env, []);
		} catch (err) {
			assert.ok(err instanceof ConfigError, String(err));
			return err.message;
		}
		assert.fail("the configuration was accepted");
	};

	it("reads the client when issuer, client id and redirect URL are all set, the secret being optional", () => {
		assert.equal(loadConfig({}, []).authz.oidc, undefined);
		assert.deepEqual(loadConfig(full, []).authz.oidc, { issuer: full.AUTHZ_OIDC_ISSUER, clientId: "savassan", redirectUrl: full.AUTHZ_OIDC_REDIRECT_URL });
		assert.equal(loadConfig({ ...full, AUTHZ_OIDC_CLIENT_SECRET: "s3cret" }, []).authz.oidc?.clientSecret, "s3cret");
	});

	it("refuses a partial client with a sentence naming what is missing, and non-http URLs", () => {
		assert.match(problems({ AUTHZ_OIDC_ISSUER: full.AUTHZ_OIDC_ISSUER }), /AUTHZ_OIDC_CLIENT_ID, AUTHZ_OIDC_REDIRECT_URL: OIDC sign-in needs AUTHZ_OIDC_ISSUER, AUTHZ_OIDC_CLIENT_ID and AUTHZ_OIDC_REDIRECT_URL together/);
		assert.match(problems({ AUTHZ_OIDC_CLIENT_SECRET: "s3cret" }), /AUTHZ_OIDC_CLIENT_SECRET: set AUTHZ_OIDC_ISSUER, AUTHZ_OIDC_CLIENT_ID and AUTHZ_OIDC_REDIRECT_URL too/);
		const bad = problems({ ...full, AUTHZ_OIDC_ISSUER: "idp.example", AUTHZ_OIDC_CLIENT_SECRET: "s3cret" });
		assert.match(bad, /AUTHZ_OIDC_ISSUER: "idp.example" is not an http\(s\) URL/);
		assert.doesNotMatch(bad, /s3cret/);
	});
});
