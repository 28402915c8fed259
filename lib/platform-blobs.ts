import { fileURLToPath } from "node:url";
import { FileBlobStore, type BlobStore } from "./blob";
import { S3BlobStore } from "./blob-s3";
import type { AssetsConfig } from "./config";
import { loadOrCreateSigningKey } from "./signed-url";

/**
 * The platform's blob store for assets and curated datasets: S3 when configured (clients talk to S3 directly), else
 * the embedded store behind the gateway.
 */
export function openPlatformBlobs(config: AssetsConfig): BlobStore {
	if (config.s3) return new S3BlobStore(config.s3);
	const url = new URL(config.storageUrl);
	if (url.protocol !== "file:") throw new Error(`assets need S3_BUCKET or a file:// STORAGE_URL, not ${url.protocol}`);
	return new FileBlobStore(fileURLToPath(url), {
		key: loadOrCreateSigningKey({ key: config.signingKey, file: config.signingKeyFile }),
		publicUrl: config.publicUrl,
	});
}
