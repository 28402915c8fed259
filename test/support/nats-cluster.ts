import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsEndpoint } from "../../lib/bus";
import { NatsAuthority } from "../../lib/nats-auth";
import { defaultNatsServerBin, freePort, startEmbeddedNats, type EmbeddedNats } from "../../lib/nats-server";
import { sleep, waitFor } from "./wait";

export interface TestNatsCluster {
	/** Every member's client URL plus, in operator mode, the platform's credentials. */
	endpoint: NatsEndpoint;
	/** Client URL of member i; stays the same across kill and restart. */
	urls: string[];
	/** `server_name` of member i, as stream info names leaders and replicas. */
	names: string[];
	/** Monitoring endpoint of member i (`/connz`, `/jsz`...). */
	monitorUrls: string[];
	authority?: NatsAuthority;
	authorityFile?: string;
	/** The running process of member i (replaced by restart). */
	servers: EmbeddedNats[];
	/** Signals member i by its PID (SIGKILL: no goodbye to its routes or clients) and waits for it to be gone. */
	kill(i: number, signal?: NodeJS.Signals): Promise<void>;
	/** Starts member i again on the same ports and store, and waits until its JetStream is healthy. */
	restart(i: number): Promise<void>;
	/** Stops every member by PID and removes their data. */
	stop(): Promise<void>;
}

const CLUSTER_NAME = "savassan-test";
const READY_TIMEOUT_MS = 30_000;

/** `ok` when the member's JetStream is in contact with a current meta leader (nats-server's own health check). */
async function healthy(monitorUrl: string): Promise<boolean> {
	try {
		const res = await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
		return res.ok;
	} catch {
		return false;
	}
}

/**
 * `size` real nats-server processes on loopback, routed to each other, JetStream clustered (each its own store);
 * with `operator`, every member trusts the same operator and preloads the same system and platform accounts (a
 * memory resolver works in a cluster of nats-server 2.9: the accounts are identical everywhere). Resolves once
 * every member reports a healthy JetStream, so R3 streams can be created at once.
 */
export async function startTestNatsCluster(opts: { size?: number; operator?: boolean } = {}): Promise<TestNatsCluster> {
	const size = opts.size ?? 3;
	const root = mkdtempSync(join(tmpdir(), "savassan-test-cluster-"));
	const bin = process.env.NATS_SERVER_BIN ?? defaultNatsServerBin();
	const authorityFile = join(root, "authority.json");
	const authority = opts.operator ? NatsAuthority.loadOrCreate(authorityFile) : undefined;
	const authConfig = (await authority?.serverConfig()) ?? "";
	const members = Array.from({ length: size }, (_, i) => i);
	const clusterPorts = await Promise.all(members.map(() => freePort()));
	const monitorPorts = await Promise.all(members.map(() => freePort()));
	const monitorUrls = monitorPorts.map((p) => `http://127.0.0.1:${p}`);
	const routes = clusterPorts.map((p) => `nats-route://127.0.0.1:${p}`);
	const names = members.map((i) => `n${i}`);

	const startMember = (i: number, port?: number) =>
		startEmbeddedNats({
			bin,
			dir: join(root, names[i]!),
			port,
			serverName: names[i],
			cluster: { name: CLUSTER_NAME, port: clusterPorts[i]!, routes },
			extraConfig: `${authConfig}\nhttp: ${JSON.stringify(`127.0.0.1:${monitorPorts[i]}`)}`,
			readyTimeoutMs: READY_TIMEOUT_MS,
		});
	const untilHealthy = (list: number[]) =>
		waitFor(
			`JetStream of ${list.map((i) => names[i]).join(", ")} to be healthy`,
			async () => (await Promise.all(list.map((i) => healthy(monitorUrls[i]!)))).every(Boolean),
			READY_TIMEOUT_MS,
		);

	const started = await Promise.allSettled(members.map((i) => startMember(i)));
	const servers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
	const stopAll = async () => {
		await Promise.all(c.servers.map((s) => s.stop()));
		rmSync(root, { recursive: true, force: true });
	};
	const c: TestNatsCluster = {
		endpoint: { servers: servers.map((s) => s.url), creds: await authority?.platformCreds("test") },
		urls: servers.map((s) => s.url),
		names,
		monitorUrls,
		authority,
		authorityFile: authority && authorityFile,
		servers,
		async kill(i, signal = "SIGKILL") {
			const server = c.servers[i]!;
			process.kill(server.pid, signal);
			await server.exited;
			await server.stop(); // only tidies up the pid file of a process already gone
		},
		async restart(i) {
			await c.servers[i]!.stop();
			c.servers[i] = await startMember(i, c.servers[i]!.port);
			await untilHealthy([i]);
		},
		stop: stopAll,
	};
	const failed = started.find((s) => s.status === "rejected");
	try {
		if (failed) throw failed.reason;
		await untilHealthy(members);
	} catch (err) {
		await stopAll();
		throw err;
	}
	return c;
}

/** Leader and replicas of a stream, as its current leader reports them. */
export function replicaState(info: StreamInfo): { leader?: string; peers: { name: string; current: boolean; lag: number }[] } {
	const cluster = info.cluster;
	return {
		leader: cluster?.leader,
		peers: (cluster?.replicas ?? []).map((r) => ({ name: r.name, current: r.current, lag: r.lag ?? 0 })),
	};
}

/** Waits until the stream has a leader and `peers` other replicas, all current (caught up with the leader). */
export async function waitForReplicas(jsm: JetStreamManager, stream: string, peers: number, timeoutMs = READY_TIMEOUT_MS): Promise<StreamInfo> {
	let last: StreamInfo | undefined;
	await waitFor(
		`stream ${stream} to have a leader and ${peers} current replicas`,
		async () => {
			last = await jsm.streams.info(stream).catch(() => last);
			const state = last && replicaState(last);
			return !!state?.leader && state.peers.length === peers && state.peers.every((p) => p.current && p.lag === 0);
		},
		timeoutMs,
	).catch((err: Error) => {
		throw new Error(`${err.message}; last seen: ${JSON.stringify(last && { replicas: last.config.num_replicas, ...replicaState(last) })}`);
	});
	return last!;
}

/**
 * Makes `server` the leader of a stream (or of one of its consumers): nats-server 2.9 cannot be told where
 * leadership goes, so ask the leader to step down until a new election lands on `server`.
 */
export async function moveLeader(
	nc: NatsConnection,
	jsm: JetStreamManager,
	target: { stream: string; consumer?: string },
	server: string,
): Promise<void> {
	const { stream, consumer } = target;
	const leaderNow = async () => {
		const info = consumer ? await jsm.consumers.info(stream, consumer) : await jsm.streams.info(stream);
		return info.cluster?.leader;
	};
	const what = consumer ? `consumer ${consumer} on ${stream}` : `stream ${stream}`;
	// JetStream API subjects: not the platform's, so not in events/subjects.ts.
	const stepDown = consumer ? `$JS.API.CONSUMER.LEADER.STEPDOWN.${stream}.${consumer}` : `$JS.API.STREAM.LEADER.STEPDOWN.${stream}`;
	for (let attempt = 1; attempt <= 20; attempt++) {
		const before = await leaderNow().catch(() => undefined);
		if (before === server) return;
		if (before === undefined) {
			await sleep(250); // an election is under way
			continue;
		}
		// A leader that just lost its post does not answer: ask again next round.
		const asked = await nc.request(stepDown, undefined, { timeout: 5_000 }).then(
			() => true,
			() => false,
		);
		if (!asked) continue;
		await waitFor(`a new leader of ${what}`, async () => {
			const now = await leaderNow().catch(() => undefined);
			return now !== undefined && now !== before;
		}, READY_TIMEOUT_MS);
	}
	throw new Error(`could not move the leader of ${what} to ${server}`);
}

/** What member i's own store holds of a stream (its monitoring endpoint, not the leader's view). */
export async function storedOn(cluster: TestNatsCluster, i: number, stream: string): Promise<{ messages: number; last_seq: number } | undefined> {
	type Jsz = { account_details?: { stream_detail?: { name: string; state: { messages: number; last_seq: number } }[] }[] };
	const res = await fetch(`${cluster.monitorUrls[i]}/jsz?accounts=true&streams=true`, { signal: AbortSignal.timeout(5_000) });
	const jsz = (await res.json()) as Jsz;
	const detail = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((s) => s.name === stream);
	return detail?.state;
}
