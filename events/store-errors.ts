import { JetStreamApiError } from "@nats-io/jetstream";
import { PublishError } from "./acked-publisher";

/**
 * JetStream refusing a write for lack of room: the server's or account's storage limit (10023 "insufficient
 * resources", 10047 "insufficient storage resources available") or a stream that refuses new messages when full
 * (10077). Callers turn it into a clear answer instead of passing JetStream's terse text on.
 */
const STORAGE_FULL_CODES = new Set([10023, 10047, 10077]);

export function isStorageFull(err: unknown): boolean {
	if (err instanceof JetStreamApiError) return STORAGE_FULL_CODES.has(err.code);
	return err instanceof PublishError && err.errCode !== undefined && STORAGE_FULL_CODES.has(err.errCode);
}
