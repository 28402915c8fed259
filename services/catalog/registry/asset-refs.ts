import type { CatalogEntity } from "./entities";

/**
 * Uploaded assets as the catalog knows them (from the assets context's STORED and REJECTED events), and the checks
 * on entities that refer to one: a dataset version's manifest or a model version's artifact named
 * `asset://<workspace>/<uid>` must be an asset stored in the entity's workspace, and an artifact's sha256 and size
 * must be the stored bytes'.
 */

export interface KnownAsset {
	uid: string;
	workspace: string;
	status: "STORED" | "REJECTED";
	sha256?: string;
	size?: number;
	reason?: string;
}

const ASSET_URI = /^asset:\/\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)$/;

/** How an entity names an uploaded asset. */
export const assetUri = (workspace: string, uid: string): string => `asset://${workspace}/${uid}`;

interface AssetRef {
	uri: string;
	workspace: string;
	uid: string;
	/** What an artifact says of the bytes (a manifest reference says nothing). */
	claims?: { sha256: string; bytes: number; path: string };
}

function refOf(uri: string, claims?: AssetRef["claims"]): AssetRef | undefined {
	const m = ASSET_URI.exec(uri);
	return m ? { uri, workspace: m[1]!, uid: m[2]!, ...(claims ? { claims } : {}) } : undefined;
}

/** The assets an entity refers to. */
export function assetRefs(e: CatalogEntity): AssetRef[] {
	if (e.kind === "dataset_version") return [refOf(e.manifest_uri)].filter((r) => r !== undefined);
	if (e.kind === "model_version") return e.artifacts.map((a) => refOf(a.uri, { sha256: a.sha256, bytes: a.bytes, path: a.path })).filter((r) => r !== undefined);
	return [];
}

/** Why the entity's asset references do not hold, one sentence each; empty when they do. */
export function assetProblems(e: CatalogEntity, known: ReadonlyMap<string, KnownAsset | undefined>): string[] {
	const problems: string[] = [];
	for (const ref of assetRefs(e)) {
		const asset = known.get(ref.uri);
		if (ref.workspace !== e.workspace) problems.push(`${ref.uri} belongs to workspace ${ref.workspace}, not ${e.workspace}`);
		else if (!asset) problems.push(`${ref.uri} is not a stored asset (no completed upload is known)`);
		else if (asset.status === "REJECTED") problems.push(`${ref.uri} was rejected: ${asset.reason ?? "no reason given"}`);
		else if (ref.claims && ref.claims.sha256 !== asset.sha256) problems.push(`artifact ${ref.claims.path} says sha256 ${ref.claims.sha256}, but ${ref.uri} has ${asset.sha256}`);
		else if (ref.claims && ref.claims.bytes !== asset.size) problems.push(`artifact ${ref.claims.path} says ${ref.claims.bytes} bytes, but ${ref.uri} has ${asset.size}`);
	}
	return problems;
}
