import { createAccount, createOperator, createUser, fromSeed, type KeyPair } from "@nats-io/nkeys";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { credsAuthenticator as credsAuthenticatorV3 } from "@nats-io/transport-node";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { subjects } from "../events/subjects";

/**
 * NATS decentralized auth (operator mode) for the embedded server: an operator, a system account, and the
 * platform's account whose signing key mints short-lived per-run user credentials. The server resolves
 * accounts from memory (preloaded in its config), so no resolver service is needed.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What is persisted: seeds only (the JWTs are derived from them at start). Keep the file private. */
interface AuthorityFile {
	operator: string;
	system: string;
	account: string;
	signing: string;
}

export interface RunCredentials {
	/** A NATS creds file (user JWT + seed): a secret. */
	creds: string;
	expiresAt: Date;
	/** Subjects the credential may publish to. */
	publish: string[];
}

export class AuthorityError extends Error {
	override name = "AuthorityError";
}

function seedText(kp: KeyPair): string {
	return decoder.decode(kp.getSeed());
}

const UNLIMITED_ACCOUNT = {
	subs: -1,
	data: -1,
	payload: -1,
	imports: -1,
	exports: -1,
	wildcards: true,
	conn: -1,
	leaf: -1,
	mem_storage: -1,
	disk_storage: -1,
	streams: -1,
	consumer: -1,
};

export class NatsAuthority {
	private constructor(
		private readonly operator: KeyPair,
		private readonly system: KeyPair,
		private readonly account: KeyPair,
		private readonly signing: KeyPair,
	) {}

	static create(): NatsAuthority {
		return new NatsAuthority(createOperator(), createAccount(), createAccount(), createAccount());
	}

	/** Reads the authority kept in `file`, creating it (mode 0600) the first time. */
	static loadOrCreate(file: string): NatsAuthority {
		if (existsSync(file)) return NatsAuthority.load(file);
		const authority = NatsAuthority.create();
		mkdirSync(dirname(file), { recursive: true });
		const tmp = `${file}.tmp`;
		writeFileSync(tmp, JSON.stringify(authority.toFile()), { mode: 0o600 });
		renameSync(tmp, file);
		return authority;
	}

	static load(file: string): NatsAuthority {
		let data: AuthorityFile;
		try {
			data = JSON.parse(readFileSync(file, "utf8"));
			return new NatsAuthority(
				fromSeed(encoder.encode(data.operator)),
				fromSeed(encoder.encode(data.system)),
				fromSeed(encoder.encode(data.account)),
				fromSeed(encoder.encode(data.signing)),
			);
		} catch (err) {
			throw new AuthorityError(`cannot read the NATS authority file ${file}: ${(err as Error).message}`);
		} finally {
			try {
				chmodSync(file, 0o600);
			} catch {
				/* read-only mounts (a Kubernetes Secret) are private already */
			}
		}
	}

	private toFile(): AuthorityFile {
		return {
			operator: seedText(this.operator),
			system: seedText(this.system),
			account: seedText(this.account),
			signing: seedText(this.signing),
		};
	}

	/** Lines for nats-server's config: trust the operator and preload both accounts. */
	async serverConfig(): Promise<string> {
		const operatorJwt = await encodeOperator("savassan", this.operator, { system_account: this.system.getPublicKey() });
		const systemJwt = await encodeAccount("SYS", this.system, {}, { signer: this.operator });
		const accountJwt = await encodeAccount(
			"SAVASSAN",
			this.account,
			{ limits: UNLIMITED_ACCOUNT, signing_keys: [this.signing.getPublicKey()] },
			{ signer: this.operator },
		);
		return [
			`operator: ${JSON.stringify(operatorJwt)}`,
			`system_account: ${this.system.getPublicKey()}`,
			"resolver: MEMORY",
			"resolver_preload: {",
			`  ${this.system.getPublicKey()}: ${JSON.stringify(systemJwt)}`,
			`  ${this.account.getPublicKey()}: ${JSON.stringify(accountJwt)}`,
			"}",
		].join("\n");
	}

	/** Credentials of the platform's own processes: the whole account, no expiry. */
	async platformCreds(name: string): Promise<string> {
		return this.userCreds(name, {}, undefined);
	}

	/**
	 * Credentials of one run attempt's sidecar: publish only to that run's telemetry subjects, subscribe only to
	 * its own reply inboxes (JetStream acks), and expire after `ttlSec`.
	 */
	async runCreds(o: { workspace: string; runId: string; attempt: number; ttlSec: number }): Promise<RunCredentials> {
		const publish = [subjects.telemetryOfRun(o.workspace, o.runId)];
		const expiresAt = new Date(Math.floor(Date.now() / 1000 + o.ttlSec) * 1000);
		const creds = await this.userCreds(
			`run-${o.runId}-${o.attempt}`,
			{
				pub: { allow: publish },
				sub: { allow: [`${subjects.inboxOfRun(o.runId)}.>`] },
				subs: 16,
				payload: 1024 * 1024,
				data: -1,
			},
			expiresAt,
		);
		return { creds, expiresAt, publish };
	}

	/**
	 * Credentials of a NATS services API client: requests to `savassan.v1.>` and service discovery (`$SRV.>`) only,
	 * replies only on its own inboxes, so the client must connect with `inboxPrefix: subjects.inboxOfClient(name)`.
	 * Who the caller is stays the token in each request's header: these only let it reach the API.
	 */
	async clientCreds(name: string): Promise<string> {
		return this.userCreds(
			`client-${name}`,
			{
				pub: { allow: [subjects.allApi(), subjects.serviceDiscovery()] },
				sub: { allow: [`${subjects.inboxOfClient(name)}.>`] },
				subs: 64,
				payload: 1024 * 1024,
				data: -1,
			},
			undefined,
		);
	}

	/**
	 * Credentials of an external producer: publish only to `ingest.<source>.>`, subscribe only to its own inboxes
	 * (JetStream's publish acks), so it must connect with `inboxPrefix: subjects.inboxOfProducer(source)`.
	 */
	async producerCreds(source: string): Promise<string> {
		return this.userCreds(
			`producer-${source}`,
			{
				pub: { allow: [subjects.ingestOfSource(source)] },
				sub: { allow: [`${subjects.inboxOfProducer(source)}.>`] },
				subs: 16,
				payload: 1024 * 1024,
				data: -1,
			},
			undefined,
		);
	}

	private async userCreds(name: string, claims: Record<string, unknown>, expiresAt: Date | undefined): Promise<string> {
		const user = createUser();
		const jwt = await encodeUser(
			name,
			user,
			this.signing,
			{ issuer_account: this.account.getPublicKey(), ...claims },
			expiresAt ? { exp: Math.floor(expiresAt.getTime() / 1000) } : {},
		);
		return decoder.decode(fmtCreds(jwt, user));
	}
}

/** Authenticator for a v3 (`@nats-io/transport-node`) connection from creds file text. */
export function credsAuthenticator(creds: string) {
	return credsAuthenticatorV3(encoder.encode(creds));
}
