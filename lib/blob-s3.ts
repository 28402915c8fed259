import {
	DeleteObjectCommand,
	GetObjectCommand,
	HeadObjectCommand,
	ListObjectsV2Command,
	PutObjectCommand,
	S3Client,
	S3ServiceException,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { checkExpiry, checkKey, sha256OfFile, type BlobStore, type PresignedRequest, type PresignPutOptions, type StoredBlob } from "./blob";
import type { S3Settings } from "./config";

/**
 * The blob port on an S3-compatible object store. Clients upload and download straight to and from S3 with
 * presigned URLs; the platform never carries the bytes. An upload's checksum is verified by reading the object back
 * (`digestBlob`), not with S3's ChecksumSHA256, which S3-compatible stores (s3rver, older MinIO) do not all honour.
 */
export class S3BlobStore implements BlobStore {
	private readonly client: S3Client;

	constructor(private readonly settings: S3Settings) {
		this.client = new S3Client({
			region: settings.region,
			...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
			...(settings.credentials ? { credentials: settings.credentials } : {}),
			forcePathStyle: settings.forcePathStyle,
			// Checksums only where S3 demands them: a default CRC32 would be signed into presigned PUTs that clients
			// cannot reproduce, and S3-compatible stores reject headers they do not know.
			requestChecksumCalculation: "WHEN_REQUIRED",
			responseChecksumValidation: "WHEN_REQUIRED",
		});
	}

	private uri(key: string): string {
		return `s3://${this.settings.bucket}/${key}`;
	}

	async putFile(key: string, path: string): Promise<StoredBlob> {
		const { sha256, bytes } = await sha256OfFile(path);
		await this.client.send(new PutObjectCommand({ Bucket: this.settings.bucket, Key: checkKey(key), Body: createReadStream(path), ContentLength: bytes }));
		return { uri: this.uri(key), bytes, sha256 };
	}

	async putBytes(key: string, bytes: Uint8Array): Promise<StoredBlob> {
		await this.client.send(new PutObjectCommand({ Bucket: this.settings.bucket, Key: checkKey(key), Body: bytes }));
		return { uri: this.uri(key), bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
	}

	async stat(key: string): Promise<{ bytes: number } | undefined> {
		try {
			const head = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: checkKey(key) }));
			return { bytes: head.ContentLength ?? 0 };
		} catch (err) {
			return notFound(err);
		}
	}

	async read(key: string): Promise<Readable | undefined> {
		try {
			const object = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: checkKey(key) }));
			// In Node the SDK's body is an http.IncomingMessage: a Readable.
			return object.Body as Readable;
		} catch (err) {
			return notFound(err);
		}
	}

	async list(prefix: string): Promise<string[]> {
		const keys: string[] = [];
		let token: string | undefined;
		do {
			const page = await this.client.send(
				new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
			);
			for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
			token = page.IsTruncated ? page.NextContinuationToken : undefined;
		} while (token);
		return keys.sort();
	}

	async delete(key: string): Promise<void> {
		await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: checkKey(key) }));
	}

	async presignPut(key: string, opts: PresignPutOptions): Promise<PresignedRequest> {
		const expiresIn = checkExpiry(opts.expiresSec);
		const command = new PutObjectCommand({
			Bucket: this.settings.bucket,
			Key: checkKey(key),
			...(opts.contentLength !== undefined ? { ContentLength: opts.contentLength } : {}),
		});
		const url = await getSignedUrl(this.client, command, { expiresIn });
		return {
			url,
			method: "PUT",
			headers: opts.contentLength !== undefined ? { "content-length": String(opts.contentLength) } : {},
			expires_at: new Date(Date.now() + expiresIn * 1000).toISOString(),
		};
	}

	async presignGet(key: string, opts: { expiresSec: number }): Promise<PresignedRequest> {
		const expiresIn = checkExpiry(opts.expiresSec);
		const url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.settings.bucket, Key: checkKey(key) }), { expiresIn });
		return { url, method: "GET", headers: {}, expires_at: new Date(Date.now() + expiresIn * 1000).toISOString() };
	}

	close(): void {
		this.client.destroy();
	}
}

/** undefined for a missing object; any other failure is rethrown. */
function notFound(err: unknown): undefined {
	if (err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 404 || err.name === "NoSuchKey" || err.name === "NotFound")) return undefined;
	throw err;
}
