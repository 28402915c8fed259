import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** JetStream KV as a document store: JSON values, creates that never overwrite, compare-and-set updates. */

/** A write refused because the key exists already (create) or its revision moved (compare-and-set lost). */
export function isRevisionConflict(err: unknown): boolean {
	return (
		err instanceof JetStreamApiError &&
		(err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
	);
}

/**
 * Opens a bucket, creating it when missing. Reads go to the stream's leader: with direct get (the library's
 * default) a replica that is still behind may answer, and a document written a moment ago reads as missing or old
 * on a cluster, which breaks every read-then-compare-and-set.
 */
export function openBucket(
	conn: JetStreamClient | NatsConnection,
	name: string,
	opts: { replicas: number; history: number; description: string; ttl?: number },
): Promise<KV> {
	return new Kvm(conn).create(name, { ...opts, allow_direct: false });
}

/** The JSON value of an entry; undefined when there is none or it is a delete marker. */
export function valueOf<T>(entry: KvEntry | null): T | undefined {
	return entry && entry.operation === "PUT" ? entry.json<T>() : undefined;
}

/**
 * Creates `key`; when it exists already, returns the stored entry instead (the caller compares). A key deleted
 * between the refused create and the read rethrows the refusal: the caller may try again.
 */
export async function createOrGet(
	kv: KV,
	key: string,
	data: string,
): Promise<{ created: true; revision: number } | { created: false; entry: KvEntry }> {
	try {
		return { created: true, revision: await kv.create(key, data) };
	} catch (err) {
		if (!isRevisionConflict(err)) throw err;
		const entry = await kv.get(key);
		if (entry?.operation !== "PUT") throw err;
		return { created: false, entry };
	}
}

const MAX_CAS_ATTEMPTS = 20;

/**
 * Compare-and-set: reads `key`, lets `decide` compute the next value from the stored one (undefined when absent),
 * and writes it only if the key did not change meanwhile; otherwise reads again and decides again, so `decide`
 * must be pure. `decide` returning undefined writes nothing.
 */
export async function compareAndSet<T>(
	kv: KV,
	key: string,
	decide: (current: T | undefined) => T | undefined,
): Promise<{ current: T | undefined; written: T | undefined }> {
	for (let attempt = 1; ; attempt++) {
		const entry = await kv.get(key);
		const current = valueOf<T>(entry);
		const next = decide(current);
		if (next === undefined) return { current, written: undefined };
		try {
			// A deleted key still has a revision: update on it, so a concurrent re-create is caught too.
			if (!entry) await kv.create(key, JSON.stringify(next));
			else await kv.update(key, JSON.stringify(next), entry.revision);
			return { current, written: next };
		} catch (err) {
			if (!isRevisionConflict(err) || attempt >= MAX_CAS_ATTEMPTS) throw err;
		}
	}
}
