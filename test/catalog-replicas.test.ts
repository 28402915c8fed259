import type { ServiceBroker } from "moleculer";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { RunTransitioned } from "../events/catalog";
import { busOf } from "../lib/moleculer/bus.middleware";
import { catalogService } from "../services/catalog/catalog.service";
import type { LineageGraph } from "../services/catalog/lineage/lineage-port";
import type { SearchResult } from "../services/catalog/search/search-port";
import { startBroker, testConfig } from "./support/broker";
import { startTestNats, type TestNats } from "./support/nats";
import { waitFor } from "./support/wait";

/**
 * Two catalog instances on one nats-server, each with its own embedded views: whatever one stores (a registration,
 * a promotion, a run event the shared durable gave it) reaches the other's search and lineage.
 */

let nats: TestNats;
let dataDir: string;
const nodes: ServiceBroker[] = [];
const WS = "ws-r";
const ME = { workspace: WS, owner: "ana" };

const start = (node: string) => {
	const env = { DATA_DIR: dataDir };
	return startBroker(nats.url, node, [catalogService(testConfig(env))], env);
};

/** A call served by one instance (by node id), never the other. */
const on = <T>(node: ServiceBroker, action: string, params: object) => node.call<T, object>(`catalog.${action}`, params, { nodeID: node.nodeID });
const hits = async (node: ServiceBroker, params: object) => (await on<SearchResult>(node, "search", { workspaces: [WS], ...params })).hits.map((h) => h.id).sort();

describe("catalog instances share what they store", () => {
	before(async () => {
		dataDir = await mkdtemp(join(tmpdir(), "catalog-replicas-"));
		nats = await startTestNats();
		nodes.push(await start("catalog-a"));
		// The second starts after a first registration: it must have it from its rebuild, then follow the rest.
		await on(nodes[0]!, "datasets.register", { id: "ds-early", name: "Early churn", ...ME });
		nodes.push(await start("catalog-b"));
	});

	after(async () => {
		for (const node of nodes) await node.stop();
		await nats?.stop();
		await rm(dataDir, { recursive: true, force: true });
	});

	it("finds on one instance what the other registered, in search and lineage", async () => {
		const [a, b] = nodes as [ServiceBroker, ServiceBroker];
		assert.deepEqual(await hits(b, { text: "churn" }), ["ds-early"]);
		await on(a, "datasets.register", { id: "ds-late", name: "Late churn", ...ME });
		await on(a, "datasets.versions.register", { id: "dsv-late-1", dataset_id: "ds-late", version: "v1", manifest_uri: "s3://d/v1.json", file_count: 1, bytes: 1, ...ME });
		await waitFor("instance b to index a's writes", async () => (await hits(b, { text: "churn" })).length === 3);
		assert.deepEqual(await hits(b, { text: "churn" }), ["ds-early", "ds-late", "dsv-late-1"]);
		const down = await on<LineageGraph>(b, "lineage.downstream", { id: "ds-late", depth: 1, workspaces: [WS] });
		assert.deepEqual(down.edges.map((e) => `${e.from}-${e.kind}->${e.to}`), ["ds-late-version_of->dsv-late-1"]);
	});

	it("moves a model version's stage on both instances when one promotes it", async () => {
		const [a, b] = nodes as [ServiceBroker, ServiceBroker];
		await on(b, "models.register", { id: "m-r", name: "Churn model", ...ME });
		await on(b, "models.versions.register", { id: "mv-r-1", model_id: "m-r", version: 1, ...ME });
		await waitFor("instance a to have the version", async () => (await hits(a, { text: "churn model" })).includes("mv-r-1"));
		await on(a, "models.promote", { model_id: "m-r", alias: "prod", version_id: "mv-r-1", actor: "ana" });
		await waitFor("instance b to see the version in prod", async () => (await hits(b, { stage: "prod" })).includes("mv-r-1"));
	});

	it("indexes every run on both instances while the shared durable splits the run events between them", async () => {
		const runs = Array.from({ length: 12 }, (_, i) => `run-r${i}`);
		for (const id of runs) {
			const run = { id, workspace: WS, status: "QUEUED", attempt: 1, trace_id: `t-${id}`, created_at: "2026-01-01T00:00:00.000Z" };
			await busOf(nodes[0]!).publisher.publish(RunTransitioned, { run_id: id, workspace: WS, from: "PENDING", to: "QUEUED", attempt: 1, at: "2026-01-01T00:00:01.000Z", run }, { msgId: `${id}:1:QUEUED` });
		}
		for (const node of nodes) {
			await waitFor(`${node.nodeID} to index all 12 runs`, async () => (await hits(node, { types: ["run"], limit: 100 })).length === runs.length);
			assert.deepEqual(await hits(node, { types: ["run"], limit: 100 }), [...runs].sort());
		}
	});
});
