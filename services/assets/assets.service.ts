import { Errors, type Context, type Service, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
import { AssetRejected, AssetStored } from "../../events/catalog";
import type { EventDefinition } from "../../events/definition";
import type { Published, PublishOptions } from "../../events/publish";
import { digestBlob, type BlobStore, type PresignedRequest } from "../../lib/blob";
import type { PlatformConfig } from "../../lib/config";
import { busOf } from "../../lib/moleculer/bus.middleware";
import { DurableEventsMixin } from "../../lib/moleculer/durable-events.mixin";
import { blobKeyOf, newAssetUid, verdict, type Asset } from "./asset";
import { openPlatformBlobs } from "../../lib/platform-blobs";
import { AssetStore, type AssetQuery } from "./asset-store";

/**
 * The assets context: presigned uploads and downloads through the blob port. The platform hands out URLs and
 * verifies what arrived; the bytes go between the client and the store (S3, or the gateway's embedded store).
 * Access is by workspace: an asset asked for under another workspace is "not found", so its existence does not leak.
 */

const SERVICE = "assets";

interface AssetsThis extends Service {
	publishEvent<T>(def: EventDefinition<T>, payload: T, opts?: PublishOptions): Promise<Published>;
	store: AssetStore;
	blobs: BlobStore;
	found(workspace: string, uid: string): Promise<Asset>;
	announce(asset: Asset): Promise<Asset>;
}

interface UploadRequest {
	workspace: string;
	name: string;
	size: number;
	sha256: string;
	content_type: string;
	expires_in_s: number;
}

interface AssetRef {
	workspace: string;
	uid: string;
}

/** What callers see of an asset: the outbox mark is the service's business. */
function view(asset: Asset): Omit<Asset, "published"> {
	const { published: _published, ...rest } = asset;
	return rest;
}

function notFound(ref: AssetRef): never {
	throw new Errors.MoleculerClientError(`no asset ${ref.uid} in workspace ${ref.workspace}`, 404, "NOT_FOUND", { uid: ref.uid });
}

export function assetsService(config: PlatformConfig): ServiceSchema<ServiceSettingSchema, AssetsThis> {
	return {
		name: SERVICE,
		mixins: [DurableEventsMixin],
		actions: {
			async requestUpload(this: AssetsThis, c: Context<UploadRequest>): Promise<PresignedRequest & { uid: string }> {
				const p = c.params;
				const uid = newAssetUid();
				const blobKey = blobKeyOf(p.workspace, uid);
				// Signed before anything is recorded: a store that cannot sign leaves no PENDING asset behind.
				const upload = await this.blobs.presignPut(blobKey, { expiresSec: p.expires_in_s, contentLength: p.size, sha256: p.sha256 });
				const at = new Date().toISOString();
				await this.store.create({
					uid,
					workspace: p.workspace,
					name: p.name,
					size: p.size,
					sha256: p.sha256,
					content_type: p.content_type,
					blob_key: blobKey,
					status: "PENDING",
					created_at: at,
					updated_at: at,
					trace_id: c.requestID!,
					published: false,
				});
				return { uid, ...upload };
			},
			async completeUpload(this: AssetsThis, c: Context<AssetRef>) {
				const asset = await this.found(c.params.workspace, c.params.uid);
				// Completing twice gives the first outcome (and repairs its event if that was lost).
				if (asset.status !== "PENDING") return view(await this.announce(asset));
				const stored = await digestBlob(this.blobs, asset.blob_key);
				if (!stored) {
					throw new Errors.MoleculerClientError(
						`nothing was uploaded for asset ${asset.uid} yet: PUT the file to its upload URL, then complete the upload`,
						409,
						"UPLOAD_MISSING",
						{ uid: asset.uid },
					);
				}
				const outcome = verdict(asset, stored);
				// Bytes that are not what was announced must not stay where a download could find them.
				if (outcome.status === "REJECTED") await this.blobs.delete(asset.blob_key);
				const updated = await this.store.update(asset.workspace, asset.uid, (current) =>
					current.status !== "PENDING" ? current : { ...current, ...outcome, updated_at: new Date().toISOString() },
				);
				return view(await this.announce(updated!));
			},
			async get(this: AssetsThis, c: Context<AssetRef>) {
				return view(await this.found(c.params.workspace, c.params.uid));
			},
			async list(this: AssetsThis, c: Context<AssetQuery>) {
				const page = await this.store.list(c.params);
				return { ...page, items: page.items.map(view) };
			},
			async requestDownload(this: AssetsThis, c: Context<AssetRef & { expires_in_s: number }>): Promise<PresignedRequest & { uid: string }> {
				const asset = await this.found(c.params.workspace, c.params.uid);
				if (asset.status !== "STORED") {
					throw new Errors.MoleculerClientError(`asset ${asset.uid} is ${asset.status}: only a STORED asset can be downloaded`, 409, "NOT_STORED", {
						uid: asset.uid,
						status: asset.status,
					});
				}
				return { uid: asset.uid, ...(await this.blobs.presignGet(asset.blob_key, { expiresSec: c.params.expires_in_s })) };
			},
		},
		methods: {
			async found(this: AssetsThis, workspace: string, uid: string): Promise<Asset> {
				return (await this.store.get(workspace, uid)) ?? notFound({ workspace, uid });
			},
			/** Publishes a settled asset's event unless it is known to be stored. */
			async announce(this: AssetsThis, asset: Asset): Promise<Asset> {
				if (asset.published || asset.status === "PENDING") return asset;
				const opts = { msgId: `${asset.uid}:${asset.status.toLowerCase()}`, traceId: asset.trace_id };
				const at = asset.updated_at;
				if (asset.status === "STORED") {
					const { uid, workspace, name, size, sha256, content_type, blob_key } = asset;
					await this.publishEvent(AssetStored, { uid, workspace, name, size, sha256, content_type, blob_key, at }, opts);
				} else {
					await this.publishEvent(AssetRejected, { uid: asset.uid, workspace: asset.workspace, name: asset.name, reason: asset.reason!, at }, opts);
				}
				return (await this.store.update(asset.workspace, asset.uid, (current) => (current.published ? current : { ...current, published: true })))!;
			},
		},
		async started(this: AssetsThis) {
			this.blobs = openPlatformBlobs(config.assets);
			this.store = await AssetStore.open(busOf(this.broker).js, config.streamReplicas);
		},
		stopped(this: AssetsThis) {
			this.blobs?.close?.();
		},
	};
}
