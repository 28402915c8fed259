/**
 * Two authz instances on one KV bucket (a real nats-server): what one stores, the other decides on, even with the
 * earlier decision in its cache: policies reach its policy index, directory changes bump its change counters.
 */
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MemoryAuditLog } from "../services/authz/audit/memory-audit";
import { openAuthz, type Authz } from "../services/authz/authz-context";
import { escapeKey, kvAuthzStores, openAuthzBucket, recordKeyOf } from "../services/authz/kv-store";
import { followAuthzChanges, type AuthzFollower } from "../services/authz/kv-watch";
import type { ResourceRef } from "../services/authz/policy/entities";
import { startTestNats, type TestNats } from "./support/nats";
import { waitFor } from "./support/wait";

const setup = { actor: "root" };
const WS_A: ResourceRef = { type: "Workspace", id: "ws-a", workspace: "ws-a" };

let nats: TestNats;
let nc: NatsConnection;
const followers: AuthzFollower[] = [];
let first: Authz;
let second: Authz;

async function instance(): Promise<Authz> {
	const kv = await openAuthzBucket(jetstream(nc), 1);
	const follower = await followAuthzChanges(kv, (err) => assert.fail(err));
	followers.push(follower);
	const authz = await openAuthz({ audit: new MemoryAuditLog(), stores: kvAuthzStores(kv) });
	follower.start(authz);
	return authz;
}

/** Waits until the second instance's (cached) decision on runs.submit in ws-a is `expected`. */
async function secondDecides(user: string, expected: "allow" | "deny", reason?: string): Promise<void> {
	await waitFor(`${user} to be ${expected === "allow" ? "allowed" : "denied"} on the second instance`, async () => {
		const d = await second.decisions.authorize({ principal: user, action: "runs.submit", resource: WS_A });
		return d.decision === expected && (reason === undefined || d.reason === reason);
	}, 5_000);
}

describe("authz on two instances: changes stored by one are decided on by the other", () => {
	before(async () => {
		nats = await startTestNats();
		nc = await connect({ servers: nats.url });
		first = await instance();
		second = await instance();
		await first.directory.putWorkspace({ id: "ws-a", name: "A" }, setup);
		await first.directory.putUser({ id: "ana", name: "ana" }, setup);
		await first.directory.putUser({ id: "ben", name: "ben", groups: [] }, setup);
		await first.directory.bind({ subject: { kind: "user", id: "ana" }, role: "editor", scope: "ws-a" }, setup);
	});

	after(async () => {
		for (const f of followers) f.stop();
		await nc?.close();
		await nats?.stop();
	});

	it("applies a policy saved and deleted on the other instance to its cached decisions", async () => {
		await secondDecides("ana", "allow");
		const text = `forbid (principal, action == Savassan::Action::"runs.submit", resource) when { resource.workspace == "ws-a" };`;
		await first.policies.save({ id: "freeze", scope: "ws-a", text }, setup);
		await secondDecides("ana", "deny", "forbidden by freeze");
		assert.equal(second.index.get("freeze")?.text, text);
		await first.policies.delete("freeze", setup);
		await secondDecides("ana", "allow");
		assert.equal(second.index.get("freeze"), undefined);
	});

	it("sees a user's binding removed, and a group's binding added, on the other instance", async () => {
		await first.directory.unbind({ subject: { kind: "user", id: "ana" }, role: "editor", scope: "ws-a" }, setup);
		await secondDecides("ana", "deny", "no policy permits");
		await first.directory.putGroup({ id: "team", name: "Team" }, setup);
		await first.directory.putUser({ id: "ben", name: "ben", groups: ["team"] }, setup);
		// Cached for ben's current version: only the group binding's global bump can make it stale.
		await secondDecides("ben", "deny");
		await first.directory.bind({ subject: { kind: "group", id: "team" }, role: "editor", scope: "ws-a" }, setup);
		await secondDecides("ben", "allow");
	});

	it("reads a bucket key back into its record kind and key", () => {
		for (const key of ["user:a.b@c", "é|x y", ""]) assert.deepEqual(recordKeyOf(`bindings.${key === "" ? "=" : escapeKey(key)}`), { kind: "bindings", key });
	});
});
