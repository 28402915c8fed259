#!/usr/bin/env node
/**
 * Health probe of a platform container (the image has no curl):
 *
 *   savassan-healthcheck                      this process's gateway answers GET /readyz with 200
 *   savassan-healthcheck http://gateway:8080  that gateway sees this container's node offering each of its SERVICES
 *                                             (for containers without a gateway)
 *
 * Exit 0: healthy; 1: not, with the reason on stderr.
 */
import { hostname } from "node:os";
import { loadConfig } from "../lib/config";

const TIMEOUT_MS = 4000;

interface Readiness {
	services?: Record<string, string[]>;
}

function fail(reason: string): never {
	process.stderr.write(`unhealthy: ${reason}\n`);
	process.exit(1);
}

async function readiness(base: string): Promise<Readiness> {
	let res: Response;
	try {
		res = await fetch(new URL("/readyz", base), { signal: AbortSignal.timeout(TIMEOUT_MS) });
	} catch (err) {
		const e = err as Error & { cause?: { code?: string } };
		fail(`no answer from ${base}/readyz (${e.cause?.code ?? e.message})`);
	}
	if (res.status !== 200) fail(`${base}/readyz answered ${res.status}`);
	return (await res.json()) as Readiness;
}

async function main(): Promise<void> {
	// SERVICES was checked when the process started; the probe only needs its values.
	const requested = (process.env.SERVICES ?? "").split(",").map((s) => s.trim()).filter(Boolean);
	const config = loadConfig(process.env, requested);
	const gateway = process.argv[2];
	if (!gateway) {
		if (requested.length && !requested.includes("gateway")) {
			fail(`this process runs ${requested.join(", ")}, no gateway: give the gateway's URL`);
		}
		await readiness(`http://127.0.0.1:${config.gatewayPort}`);
		return;
	}
	if (!requested.length) fail("SERVICES is not set: nothing to look for");
	const report = await readiness(gateway);
	// Without NODE_ID a node is named <hostname>-<pid>; the probe runs in the same container, not the same process.
	const mine = (node: string) => node === config.nodeId || (!process.env.NODE_ID && node.startsWith(`${hostname()}-`));
	const missing = requested.filter((name) => !(report.services?.[name] ?? []).some(mine));
	if (missing.length) fail(`${gateway} sees no node of this container offering ${missing.join(", ")}`);
}

main().catch((err: Error) => fail(err.message));
