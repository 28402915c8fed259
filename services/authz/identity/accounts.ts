/**
 * Local accounts: a username and an Argon2id password hash per user, and password login with throttling,
 * lock-out and an audit record for every attempt.
 */
import type { AuditSink } from "../audit/audit";
import { auditRecord } from "../audit/audit";
import type { ChangeMeta } from "../directory/model";
import { AuthzError } from "../errors";
import { systemClock, type Clock, type RecordStore } from "../store";
import { auditLogin } from "./login-audit";
import { MIN_PASSWORD_LENGTH, type PasswordHashing } from "./passwords";
import type { LoginThrottle } from "./throttle";

export interface Account {
	username: string;
	user_id: string;
	password_hash: string;
	updated_at: string;
}

export interface LoginRequest {
	username: string;
	password: string;
	source?: string;
	trace_id?: string;
}

export class LocalAccounts {
	/** Verified against when the username is unknown, so both cases take the same time. */
	private decoy: Promise<string> | undefined;

	constructor(
		private readonly store: RecordStore<Account>,
		private readonly passwords: PasswordHashing,
		private readonly throttle: LoginThrottle,
		private readonly audit: AuditSink,
		private readonly clock: Clock = systemClock,
	) {}

	async setPassword(userId: string, username: string, password: string, meta: ChangeMeta): Promise<void> {
		if (password.length < MIN_PASSWORD_LENGTH) throw new AuthzError("invalid", `A password needs at least ${MIN_PASSWORD_LENGTH} characters.`);
		const key = username.toLowerCase();
		const before = await this.store.get(key);
		if (before && before.user_id !== userId) throw new AuthzError("conflict", `Username ${username} is taken.`);
		const now = new Date(this.clock());
		await this.store.put(key, { username: key, user_id: userId, password_hash: await this.passwords.hash(password), updated_at: now.toISOString() });
		// The audit shows that the password changed, never the hash.
		this.audit.append(auditRecord({ kind: "change", actor: meta.actor, action: before ? "account.password" : "account.create", resource: `Account:${key}`, result: "success", reason: `password set by ${meta.actor}`, before: before && { username: key, user_id: before.user_id }, after: { username: key, user_id: userId }, trace_id: meta.trace_id }, now));
	}

	/** The user id on success; an AuthzError ("locked" or "unauthenticated") otherwise. */
	async login(req: LoginRequest): Promise<string> {
		const username = req.username.toLowerCase();
		const keys = [`account:${username}`, ...(req.source ? [`source:${req.source}`] : [])];
		const attempt = { via: "password" as const, username, source: req.source, trace_id: req.trace_id };
		const lockedUntil = await this.throttle.lockedUntil(keys);
		if (lockedUntil !== undefined) {
			auditLogin(this.audit, this.clock, { ...attempt, actor: "anonymous", ok: false, reason: `locked until ${new Date(lockedUntil).toISOString()}` });
			throw new AuthzError("locked", `Too many failed logins; try again after ${new Date(lockedUntil).toISOString()}.`);
		}
		const account = await this.store.get(username);
		const ok = account ? await this.passwords.verify(account.password_hash, req.password) : (await this.passwords.verify(await this.decoyHash(), req.password), false);
		if (!account || !ok) {
			await this.throttle.failed(keys);
			auditLogin(this.audit, this.clock, { ...attempt, actor: account?.user_id ?? "anonymous", ok: false, reason: account ? "wrong password" : "unknown username" });
			throw new AuthzError("unauthenticated", "Wrong username or password.");
		}
		await this.throttle.succeeded(keys[0]!);
		auditLogin(this.audit, this.clock, { ...attempt, actor: account.user_id, ok: true, reason: "password verified" });
		return account.user_id;
	}

	private decoyHash(): Promise<string> {
		return (this.decoy ??= this.passwords.hash("decoy password that no account has"));
	}
}
