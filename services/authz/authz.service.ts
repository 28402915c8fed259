import type { OidcClientSettings } from "../../lib/config";
import { Errors, type Context, type Service, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import { busOf } from "../../lib/moleculer/bus.middleware";
import type { Authenticated, EdgeMeta } from "../../lib/moleculer/authz.middleware";
import type { AuthorizeParams } from "./edge-rules";
import { toJsonLines, type AuditQuery, type AuditResult } from "./audit/audit";
import { StreamAuditLog } from "./audit/stream-audit";
import { openAuthz, type Authz, type AuthzStores } from "./authz-context";
import { PLATFORM, type ChangeMeta, type RoleBinding } from "./directory/model";
import { AuthzError } from "./errors";
import { discoverOidc, OidcLogin } from "./identity/oidc";
import { linkedUsers } from "./identity/oidc-users";
import type { ThrottleOptions } from "./identity/throttle";
import { kvAuthzStores, openAuthzBucket } from "./kv-store";
import { followAuthzChanges, type AuthzFollower } from "./kv-watch";
import type { DraftChange } from "./policy/policy-index";

/**
 * The authz context on the bus: logins and tokens, API keys, the directory, policies, decisions and the audit log.
 * Records live in one JetStream KV bucket and the audit trail in the AUDIT stream, so a restart loses nothing.
 * `authenticate` and `authorize` serve AuthzMiddleware on every node; they and every admin action are refused to
 * edge callers by the middleware unless ACTION_MAP grants them.
 */

const SERVICE = "authz";
/** The user the bootstrap creates. */
export const BOOTSTRAP_ADMIN = "admin";

export interface AuthzServiceSettings {
	/** Creates the `admin` user with this password on a first start with an empty directory. Never logged. */
	adminPassword?: string;
	streamReplicas: number;
	throttle?: ThrottleOptions;
	/** Sign-in through this OpenID provider (AUTHZ_OIDC_*); without it the oidc actions say it is not configured. */
	oidc?: OidcClientSettings;
}

interface AuthzThis extends Service {
	authz: Authz;
	stores: AuthzStores;
	audit: StreamAuditLog;
	follower: AuthzFollower;
	/** Discovered on first use, so the provider may come up after the platform. */
	oidcLogin?: Promise<OidcLogin>;
	bootstrap(password: string): Promise<void>;
	oidc(): Promise<OidcLogin>;
}

type Ctx<P> = Context<P, EdgeMeta>;

/** Domain refusals as client errors with their HTTP status; a policy's problems keep their lines. */
function clientError(err: unknown): never {
	if (!(err instanceof AuthzError)) throw err;
	if (err.code === "invalid") {
		const first = err.problems?.[0];
		throw new Errors.MoleculerClientError(err.message, 422, "INVALID", { ...(first ? { line: first.line, column: first.column } : {}), problems: err.problems ?? [] });
	}
	const [status, type] = ({ not_found: [404, "NOT_FOUND"], conflict: [409, "CONFLICT"], unauthenticated: [401, "UNAUTHENTICATED"], locked: [423, "LOCKED"] } as const)[err.code];
	throw new Errors.MoleculerClientError(err.message, status, type);
}

/** Where a sign-in comes from, for its audit record and its session. */
function loginMeta(ctx: Ctx<unknown>): { source?: string; trace_id?: string } {
	return { ...(ctx.meta.source ? { source: ctx.meta.source } : {}), ...(ctx.requestID ? { trace_id: ctx.requestID } : {}) };
}

function changeMeta(ctx: Ctx<unknown>): ChangeMeta {
	return { actor: ctx.meta.principal ?? "system", ...(ctx.requestID ? { trace_id: ctx.requestID } : {}) };
}

/** The key owner: the authenticated caller; an internal call names the user. */
function keyOwner(ctx: Ctx<{ user_id?: string }>): string {
	const owner = ctx.meta.principal ?? ctx.params.user_id;
	if (!owner) throw new Errors.ValidationError("user_id is required when the call has no authenticated caller", "INVALID_PARAMS", { fields: [{ field: "user_id", message: "is required" }] });
	return owner;
}

interface AuditParams {
	from?: string;
	to?: string;
	user?: string;
	result?: AuditResult;
	resource?: string;
	kind?: AuditQuery["kind"];
	workspace?: string;
	trace_id?: string;
	limit?: number;
}

/** Bounds normalised to the records' own ISO form, so text comparison is time comparison. */
const auditQuery = (p: AuditParams): AuditQuery => {
	const { user, from, to, ...rest } = p;
	const iso = (t: string) => new Date(t).toISOString();
	return { ...rest, ...(user !== undefined ? { actor: user } : {}), ...(from !== undefined ? { from: iso(from) } : {}), ...(to !== undefined ? { to: iso(to) } : {}) };
};

interface PolicyParams {
	id: string;
	text: string;
	workspace?: string;
	description?: string;
}

const policyInput = (p: PolicyParams) => ({ id: p.id, text: p.text, scope: p.workspace ?? PLATFORM, ...(p.description !== undefined ? { description: p.description } : {}) });

export function authzService(settings: AuthzServiceSettings): ServiceSchema<ServiceSettingSchema, AuthzThis> {
	/** Runs a domain call, maps its refusals, and answers only once its audit records are stored. */
	async function audited<T>(self: AuthzThis, work: () => Promise<T>): Promise<T> {
		try {
			return await work();
		} catch (err) {
			return clientError(err);
		} finally {
			await self.audit.flush();
		}
	}

	return {
		name: SERVICE,
		actions: {
			async authenticate(this: AuthzThis, ctx: Ctx<{ bearer?: string; apiKey?: string }>): Promise<Authenticated> {
				const { bearer, apiKey } = ctx.params;
				try {
					if (bearer) return { user_id: (await this.authz.tokens.verifyAccess(bearer)).user_id, via: "password" };
					if (apiKey) return { user_id: (await this.authz.apiKeys.verify(apiKey)).user_id, via: "api_key" };
				} catch (err) {
					return clientError(err);
				}
				throw new Errors.MoleculerClientError("A bearer token or an API key is required.", 401, "UNAUTHENTICATED");
			},
			authorize(this: AuthzThis, ctx: Ctx<AuthorizeParams>) {
				return this.authz.decisions.authorize(ctx.params);
			},
			login(this: AuthzThis, ctx: Ctx<{ username: string; password: string }>) {
				const meta = loginMeta(ctx);
				return audited(this, async () => {
					const userId = await this.authz.accounts.login({ username: ctx.params.username, password: ctx.params.password, ...meta });
					return this.authz.tokens.issue(userId, meta);
				});
			},
			async "oidc.begin"(this: AuthzThis) {
				const { url, state } = await (await this.oidc()).begin();
				return { authorize_url: url, state };
			},
			/** The code and state the provider sent the browser back with → a session, like a password login. */
			async "oidc.complete"(this: AuthzThis, ctx: Ctx<{ code: string; state: string }>) {
				const oidc = await this.oidc();
				const meta = loginMeta(ctx);
				return audited(this, async () => this.authz.tokens.issue(await oidc.complete(ctx.params.code, ctx.params.state, meta), meta));
			},
			refresh(this: AuthzThis, ctx: Ctx<{ refresh_token: string }>) {
				return audited(this, () => this.authz.tokens.refresh(ctx.params.refresh_token, { ...(ctx.requestID ? { trace_id: ctx.requestID } : {}) }));
			},
			/** Revokes an access token, or the whole session of a refresh token: holding it is the right to end it. */
			logout(this: AuthzThis, ctx: Ctx<{ token: string }>) {
				return audited(this, async () => {
					await this.authz.tokens.revoke(ctx.params.token, ctx.meta.principal ?? "token holder", { ...(ctx.requestID ? { trace_id: ctx.requestID } : {}) });
					return { revoked: true };
				});
			},
			"apiKeys.create"(this: AuthzThis, ctx: Ctx<{ name: string; user_id?: string }>) {
				return audited(this, () => this.authz.apiKeys.create(keyOwner(ctx), ctx.params.name, changeMeta(ctx)));
			},
			async "apiKeys.list"(this: AuthzThis, ctx: Ctx<{ user_id?: string }>) {
				return { items: await this.authz.apiKeys.list(keyOwner(ctx)) };
			},
			"apiKeys.revoke"(this: AuthzThis, ctx: Ctx<{ id: string }>) {
				return audited(this, async () => {
					const key = await this.authz.apiKeys.get(ctx.params.id);
					// An edge caller manages its own keys only: someone else's key does not exist for it.
					if (!key || (ctx.meta.principal !== undefined && key.user_id !== ctx.meta.principal)) throw new AuthzError("not_found", `API key ${ctx.params.id} does not exist.`);
					await this.authz.apiKeys.revoke(key.id, changeMeta(ctx));
					return { revoked: true };
				});
			},
			"users.put"(this: AuthzThis, ctx: Ctx<{ id: string; name: string; email?: string; groups?: string[]; department?: string; disabled?: boolean; username?: string; password?: string }>) {
				const { username, password, ...user } = ctx.params;
				return audited(this, async () => {
					const stored = await this.authz.directory.putUser(user, changeMeta(ctx));
					if (password !== undefined) await this.authz.accounts.setPassword(stored.id, username ?? stored.id, password, changeMeta(ctx));
					return stored;
				});
			},
			"users.remove"(this: AuthzThis, ctx: Ctx<{ id: string }>) {
				return audited(this, async () => (await this.authz.directory.deleteUser(ctx.params.id, changeMeta(ctx)), { removed: true }));
			},
			"groups.put"(this: AuthzThis, ctx: Ctx<{ id: string; name: string; department?: string }>) {
				return audited(this, () => this.authz.directory.putGroup(ctx.params, changeMeta(ctx)));
			},
			"groups.remove"(this: AuthzThis, ctx: Ctx<{ id: string }>) {
				return audited(this, async () => (await this.authz.directory.deleteGroup(ctx.params.id, changeMeta(ctx)), { removed: true }));
			},
			/** A department moves with its whole subtree; its members' decisions change at once. */
			"departments.put"(this: AuthzThis, ctx: Ctx<{ id: string; name: string; parent?: string }>) {
				return audited(this, () => this.authz.directory.putDepartment(ctx.params, changeMeta(ctx)));
			},
			"departments.remove"(this: AuthzThis, ctx: Ctx<{ id: string }>) {
				return audited(this, async () => (await this.authz.directory.deleteDepartment(ctx.params.id, changeMeta(ctx)), { removed: true }));
			},
			"workspaces.put"(this: AuthzThis, ctx: Ctx<{ id: string; name: string }>) {
				return audited(this, () => this.authz.directory.putWorkspace(ctx.params, changeMeta(ctx)));
			},
			"bindings.add"(this: AuthzThis, ctx: Ctx<RoleBinding>) {
				return audited(this, async () => (await this.authz.directory.bind(ctx.params, changeMeta(ctx)), ctx.params));
			},
			"bindings.remove"(this: AuthzThis, ctx: Ctx<RoleBinding>) {
				return audited(this, async () => (await this.authz.directory.unbind(ctx.params, changeMeta(ctx)), ctx.params));
			},
			"policies.save"(this: AuthzThis, ctx: Ctx<PolicyParams>) {
				return audited(this, () => this.authz.policies.save(policyInput(ctx.params), changeMeta(ctx)));
			},
			"policies.delete"(this: AuthzThis, ctx: Ctx<{ id: string }>) {
				return audited(this, async () => (await this.authz.policies.delete(ctx.params.id, changeMeta(ctx)), { deleted: true }));
			},
			/** The decision a request would get, under the saved policies and, with `draft`, under the changed ones. */
			"policies.dryRun"(this: AuthzThis, ctx: Ctx<{ request: AuthorizeParams; draft?: Array<{ put?: PolicyParams; delete?: string }> }>) {
				return audited(this, async () => {
					const { request, draft } = ctx.params;
					if (!draft) return this.authz.decisions.dryRun(request);
					const changes: DraftChange[] = [];
					for (const c of draft) {
						if (c.put) changes.push({ put: await this.authz.policies.prepare(policyInput(c.put), changeMeta(ctx)) });
						if (c.delete !== undefined) changes.push({ delete: c.delete });
					}
					return this.authz.decisions.dryRun(request, changes);
				});
			},
			/** Explains a decision (policies and reason) without caching or auditing it as one the platform acted on. */
			decide(this: AuthzThis, ctx: Ctx<AuthorizeParams>) {
				return this.authz.decisions.dryRun(ctx.params);
			},
			async "audit.query"(this: AuthzThis, ctx: Ctx<AuditParams>) {
				return { items: await this.audit.query(auditQuery(ctx.params)) };
			},
			async "audit.export"(this: AuthzThis, ctx: Ctx<AuditParams>) {
				// Oldest first, as a log reads.
				return { format: "jsonl", data: toJsonLines((await this.audit.query(auditQuery(ctx.params))).reverse()) };
			},
		},
		methods: {
			oidc(this: AuthzThis): Promise<OidcLogin> {
				const client = settings.oidc;
				if (!client) {
					return Promise.reject(
						new Errors.MoleculerClientError("OIDC sign-in is not configured: set AUTHZ_OIDC_ISSUER, AUTHZ_OIDC_CLIENT_ID and AUTHZ_OIDC_REDIRECT_URL.", 404, "OIDC_NOT_CONFIGURED"),
					);
				}
				this.oidcLogin ??= discoverOidc(client.issuer, { client_id: client.clientId, redirect_uri: client.redirectUrl, ...(client.clientSecret ? { client_secret: client.clientSecret } : {}) }).then(
					(config) => new OidcLogin(config, this.stores.oidcPending, linkedUsers(this.authz.directory, this.stores.oidcLinks), this.audit),
					(err: Error) => {
						// Try again at the next sign-in: the provider may just be starting.
						this.oidcLogin = undefined;
						throw new Errors.MoleculerError(`The identity provider ${client.issuer} cannot be reached: ${err.message}.`, 503, "OIDC_UNAVAILABLE");
					},
				);
				return this.oidcLogin;
			},
			async bootstrap(this: AuthzThis, password: string) {
				if ((await this.stores.directory.users.list()).length) return;
				const meta: ChangeMeta = { actor: "system" };
				await this.authz.directory.putUser({ id: BOOTSTRAP_ADMIN, name: "Administrator" }, meta);
				await this.authz.accounts.setPassword(BOOTSTRAP_ADMIN, BOOTSTRAP_ADMIN, password, meta);
				await this.authz.directory.bind({ subject: { kind: "user", id: BOOTSTRAP_ADMIN }, role: "admin", scope: PLATFORM }, meta);
				await this.audit.flush();
				this.logger.info(`authz: created the ${BOOTSTRAP_ADMIN} user (first start, empty directory)`);
			},
		},
		async started(this: AuthzThis) {
			const bus = busOf(this.broker);
			this.audit = new StreamAuditLog(bus.js, bus.acked, (id, err) => this.logger.error(`authz: audit record ${id} could not be stored: ${err.message}`));
			const kv = await openAuthzBucket(bus.js, settings.streamReplicas);
			// Other authz instances change policies and the directory too: follow the bucket from before the load.
			this.follower = await followAuthzChanges(kv, (err) => this.logger.error(`authz: stopped following changes of other instances: ${err.message}`));
			this.stores = kvAuthzStores(kv);
			this.authz = await openAuthz({ audit: this.audit, stores: this.stores, ...(settings.throttle ? { throttle: settings.throttle } : {}) });
			this.follower.start(this.authz);
			if (settings.adminPassword) {
				await this.bootstrap(settings.adminPassword).catch((err: Error) => {
					throw new Error(`authz: cannot create the ${BOOTSTRAP_ADMIN} user from AUTHZ_ADMIN_PASSWORD: ${err.message}`);
				});
			}
		},
		async stopped(this: AuthzThis) {
			this.follower?.stop();
			await this.audit?.flush();
		},
	};
}
