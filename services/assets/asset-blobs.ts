import { fileURLToPath } from "node:url";
import { FileBlobStore, type BlobStore } from "../../lib/blob";
import { S3BlobStore } from "../../lib/blob-s3";
import type { AssetsConfig } from "../../lib/config";
import { loadOrCreateSigningKey } from "../../lib/signed-url";

/** The blob store assets go to: S3 when configured (clients talk to S3 directly), else the embedded store behind the gateway. */
export function openAssetBlobs(config: AssetsConfig): BlobStore {
	if (config.s3) return new S3BlobStore(config.s3);
	const url = new URL(config.storageUrl);
	if (url.protocol !== "file:") throw new Error(`assets need S3_BUCKET or a file:// STORAGE_URL, not ${url.protocol}`);
	return new FileBlobStore(fileURLToPath(url), {
		key: loadOrCreateSigningKey({ key: config.signingKey, file: config.signingKeyFile }),
		publicUrl: config.publicUrl,
	});
}
