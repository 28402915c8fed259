import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { compareAndSet, openBucket, valueOf } from "../../lib/kv";
import type { Asset, AssetStatus } from "./asset";

/**
 * Assets in the JetStream KV bucket `assets`, key `<workspace>.<uid>`: a workspace's assets are one key filter away,
 * and an asset read under another workspace simply does not exist. Created once, then moved by compare-and-set.
 */

export const ASSETS_BUCKET = "assets";

export interface AssetQuery {
	workspace: string;
	status?: AssetStatus[];
	limit: number;
	cursor?: string;
}

export interface AssetPage {
	items: Asset[];
	/** The cursor of the next page, when there is one. */
	next?: string;
}

const keyOf = (workspace: string, uid: string) => `${workspace}.${uid}`;

export class AssetStore {
	private constructor(private readonly kv: KV) {}

	static async open(js: JetStreamClient, replicas: number): Promise<AssetStore> {
		return new AssetStore(await openBucket(js, ASSETS_BUCKET, { history: 5, replicas, description: "Uploaded assets (assets)" }));
	}

	async create(asset: Asset): Promise<void> {
		await this.kv.create(keyOf(asset.workspace, asset.uid), JSON.stringify(asset));
	}

	async get(workspace: string, uid: string): Promise<Asset | undefined> {
		return valueOf<Asset>(await this.kv.get(keyOf(workspace, uid)));
	}

	/** Applies `decide` by compare-and-set; returns the stored asset afterwards (undefined when there is none). */
	async update(workspace: string, uid: string, decide: (current: Asset) => Asset): Promise<Asset | undefined> {
		const { current, written } = await compareAndSet<Asset>(this.kv, keyOf(workspace, uid), (c) => c && decide(c));
		return written ?? current;
	}

	/** A page of a workspace's assets in uid order (creation order). Lists the workspace's keys: fine for thousands. */
	async list(q: AssetQuery): Promise<AssetPage> {
		const uids: string[] = [];
		for await (const key of await this.kv.keys(`${q.workspace}.*`)) uids.push(key.slice(q.workspace.length + 1));
		uids.sort();
		const items: Asset[] = [];
		for (const uid of uids) {
			if (q.cursor && uid <= q.cursor) continue;
			const asset = await this.get(q.workspace, uid);
			if (!asset || (q.status && !q.status.includes(asset.status))) continue;
			if (items.length === q.limit) return { items, next: items[items.length - 1]!.uid };
			items.push(asset);
		}
		return { items };
	}
}
