/**
 * The authz context wired on the in-memory stores: what the service (and the tests) start from. The JetStream KV
 * adapters replace `stores` one by one; nothing else changes.
 */
import type { AuditSink } from "./audit/audit";
import { Directory, memoryDirectoryStores, type DirectoryStores } from "./directory/directory";
import { LocalAccounts, type Account } from "./identity/accounts";
import { ApiKeys, type ApiKeyRecord } from "./identity/api-keys";
import { Keyring, type SigningKeyRecord } from "./identity/keyring";
import type { PendingLogin } from "./identity/oidc";
import type { OidcLink } from "./identity/oidc-users";
import { argon2Hashing, type PasswordHashing } from "./identity/passwords";
import { DEFAULT_THROTTLE, LoginThrottle, type AttemptState, type ThrottleOptions } from "./identity/throttle";
import { TokenService, type TokenStores } from "./identity/tokens";
import { DecisionPoint } from "./policy/decision-point";
import { PolicyAdmin } from "./policy/policy-admin";
import { PolicyIndex, type StoredPolicy } from "./policy/policy-index";
import { loadSchema, type AuthzSchema } from "./policy/schema";
import { MemoryStore, systemClock, type Clock, type RecordStore } from "./store";

export interface AuthzStores {
	directory: DirectoryStores;
	policies: RecordStore<StoredPolicy>;
	accounts: RecordStore<Account>;
	attempts: RecordStore<AttemptState>;
	signingKeys: RecordStore<SigningKeyRecord>;
	tokens: TokenStores;
	apiKeys: RecordStore<ApiKeyRecord>;
	/** OIDC sign-ins begun and not yet completed (any instance may complete one), and IdP identities → users. */
	oidcPending: RecordStore<PendingLogin>;
	oidcLinks: RecordStore<OidcLink>;
}

export function memoryAuthzStores(): AuthzStores {
	return {
		directory: memoryDirectoryStores(),
		policies: new MemoryStore(),
		accounts: new MemoryStore(),
		attempts: new MemoryStore(),
		signingKeys: new MemoryStore(),
		tokens: { families: new MemoryStore(), denied: new MemoryStore() },
		apiKeys: new MemoryStore(),
		oidcPending: new MemoryStore(),
		oidcLinks: new MemoryStore(),
	};
}

export interface AuthzOptions {
	audit: AuditSink;
	stores?: AuthzStores;
	schema?: AuthzSchema;
	clock?: Clock;
	passwords?: PasswordHashing;
	throttle?: ThrottleOptions;
	issuer?: string;
	cacheSize?: number;
}

export interface Authz {
	schema: AuthzSchema;
	directory: Directory;
	policies: PolicyAdmin;
	index: PolicyIndex;
	decisions: DecisionPoint;
	accounts: LocalAccounts;
	keyring: Keyring;
	tokens: TokenService;
	apiKeys: ApiKeys;
}

export async function openAuthz(o: AuthzOptions): Promise<Authz> {
	const clock = o.clock ?? systemClock;
	const stores = o.stores ?? memoryAuthzStores();
	const schema = o.schema ?? loadSchema();
	const directory = new Directory(stores.directory, o.audit, clock);
	const index = new PolicyIndex();
	const policies = new PolicyAdmin(schema, stores.policies, index, o.audit, async (ws) => !!(await directory.getWorkspace(ws)), clock);
	await policies.load();
	const keyring = await Keyring.open(stores.signingKeys, clock);
	return {
		schema,
		directory,
		policies,
		index,
		decisions: new DecisionPoint({ schema, directory, index, audit: o.audit, clock, cacheSize: o.cacheSize }),
		accounts: new LocalAccounts(stores.accounts, o.passwords ?? argon2Hashing(), new LoginThrottle(stores.attempts, o.throttle ?? DEFAULT_THROTTLE, clock), o.audit, clock),
		keyring,
		tokens: new TokenService(keyring, stores.tokens, o.audit, o.issuer, clock),
		apiKeys: new ApiKeys(stores.apiKeys, o.audit, clock),
	};
}
