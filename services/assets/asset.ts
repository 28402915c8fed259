import { randomBytes } from "node:crypto";

/**
 * An uploaded file and its life: PENDING from the upload request (the URL is handed out, nothing is stored yet),
 * then STORED when the bytes match the announced size and sha256, or REJECTED (with the reason) when they do not.
 */

export type AssetStatus = "PENDING" | "STORED" | "REJECTED";

export interface Asset {
	uid: string;
	workspace: string;
	name: string;
	/** Announced by the client; verified on completion. */
	size: number;
	sha256: string;
	content_type: string;
	/** Where the bytes live in the blob store. */
	blob_key: string;
	status: AssetStatus;
	reason?: string;
	created_at: string;
	updated_at: string;
	trace_id: string;
	/** False until the asset's STORED/REJECTED event is in JetStream (the asset is its own outbox). */
	published: boolean;
}

/**
 * A new uid: time first (base36 milliseconds, fixed width) so that uids sort by creation, which is the order
 * `assets.list` pages in; then random bits so that uids are not guessable.
 */
export function newAssetUid(now = Date.now()): string {
	return `a${now.toString(36).padStart(9, "0")}${randomBytes(10).toString("hex")}`;
}

/** The blob key of an asset: under its workspace, named by uid (the user's file name stays metadata). */
export function blobKeyOf(workspace: string, uid: string): string {
	return `assets/${workspace}/${uid}`;
}

/** What a completed upload makes of a PENDING asset, given the bytes the store actually holds. */
export function verdict(asset: Asset, stored: { bytes: number; sha256: string }): { status: "STORED" } | { status: "REJECTED"; reason: string } {
	if (stored.bytes !== asset.size) return { status: "REJECTED", reason: `size mismatch: ${stored.bytes} bytes were uploaded, ${asset.size} were announced` };
	if (stored.sha256 !== asset.sha256) return { status: "REJECTED", reason: `sha256 mismatch: the uploaded bytes hash to ${stored.sha256}, ${asset.sha256} was announced` };
	return { status: "STORED" };
}
