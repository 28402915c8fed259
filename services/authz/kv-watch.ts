/**
 * Keeps an authz instance's memory in step with what other instances store in the shared bucket: the policy index
 * (decisions evaluate it, not the store) and the change counters that make cached decisions stale. An instance's
 * own writes come back too; applying them again is harmless (the same policy upserted, one more bump).
 */
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { Directory } from "./directory/directory";
import { recordKeyOf } from "./kv-store";
import type { PolicyIndex, StoredPolicy } from "./policy/policy-index";

/** Directory kinds whose change may touch many users' decisions (memberships through groups and departments). */
const SHARED_DIRECTORY_KINDS = new Set(["groups", "departments", "roles", "workspaces"]);
const USER_BINDINGS = "user:";

export interface AuthzFollower {
	/** Applies the changes seen since the watch began, then every later one. */
	start(target: { index: PolicyIndex; directory: Directory }): void;
	stop(): void;
}

/** Starts watching before the instance loads its state, so nothing stored in between is missed. */
export async function followAuthzChanges(kv: KV, onError: (err: Error) => void): Promise<AuthzFollower> {
	const watch = await kv.watch({ include: "updates" });
	return {
		start(target) {
			void (async () => {
				for await (const e of watch) apply(e, target);
			})().catch(onError);
		},
		stop: () => watch.stop(),
	};
}

function apply(e: KvWatchEntry, { index, directory }: { index: PolicyIndex; directory: Directory }): void {
	const { kind, key } = recordKeyOf(e.key);
	if (kind === "policies") {
		if (e.operation === "PUT") index.upsert(e.json<StoredPolicy>());
		else index.remove(key);
	} else if (kind === "users") directory.versions.bumpUser(key);
	else if (kind === "bindings") {
		if (key.startsWith(USER_BINDINGS)) directory.versions.bumpUser(key.slice(USER_BINDINGS.length));
		else directory.versions.bumpAll();
	} else if (SHARED_DIRECTORY_KINDS.has(kind)) directory.versions.bumpAll();
}
