import { Svcm, type Service, type ServiceMsg } from "@nats-io/services";
import type { ServiceBroker } from "moleculer";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { subjects } from "../../events/subjects";
import type { Bus } from "../../lib/bus";
import { PROJECT_ROOT } from "../../lib/paths";
import { parseJsonObject } from "./api-body";
import { credentialOf, edgeCall, toErrorBody, traceIdOf } from "./edge";
import { EDGE_ROUTES, type EdgeRoute } from "./routes";

export interface NatsApi {
	stop(): Promise<void>;
}

/** The name every gateway's service registers under: `$SRV.PING.savassan` finds them all. */
export const NATS_SERVICE_NAME = "savassan";
/** Gateways answer in one queue group, so each request is handled by one of them. */
const QUEUE_GROUP = "savassan-gateways";
/** Optional request header: the caller's trace id (a fresh one when absent or not sane); error bodies quote it. */
export const TRACE_HEADER = "Trace-Id";

/** The routes exposed over NATS, each with its endpoint subject. */
export function natsEndpoints(routes: readonly EdgeRoute[] = EDGE_ROUTES): { name: string; subject: string; action: string }[] {
	return routes
		.filter((r): r is EdgeRoute & { nats: readonly string[] } => r.nats !== undefined)
		.map((r) => ({ name: r.nats.join("_"), subject: subjects.api(r.nats), action: r.action }));
}

/** A request header by case-insensitive name ("" when absent): callers write `authorization` or `Authorization`. */
function headerOf(msg: ServiceMsg, lowerName: string): string {
	for (const [name, values] of msg.headers ?? []) if (name.toLowerCase() === lowerName) return values[0] ?? "";
	return "";
}

/**
 * Serves the routes that have NATS tokens (`savassan.v1.<tokens>`) through the NATS services API: discoverable
 * with `$SRV.PING|INFO|STATS`, the params in the JSON body, the caller's credential in an `Authorization` (or
 * `X-Api-Key`) header. Each request becomes the same edge call as over HTTP, so authz and validation are the HTTP
 * API's; a failure is a service error whose code is the HTTP status and whose data is the error body.
 */
export async function startNatsApi({ broker, bus }: { broker: ServiceBroker; bus: Bus }): Promise<NatsApi> {
	const log = broker.getLogger("nats-api");
	const { version } = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { version: string };
	// @nats-io/services bundles its own nats-core typings; at run time it only needs the connection's core API.
	const service: Service = await new Svcm(bus.nc as never).add({
		name: NATS_SERVICE_NAME,
		version,
		description: "Savassan platform API: the HTTP API's actions over NATS request/reply",
		queue: QUEUE_GROUP,
	});

	async function handle(msg: ServiceMsg, action: string): Promise<void> {
		const traceId = traceIdOf(headerOf(msg, TRACE_HEADER.toLowerCase()).trim());
		try {
			const params = parseJsonObject(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
			const credential = credentialOf((name) => headerOf(msg, name));
			const result = await edgeCall<unknown>(broker, { action, params, credential, source: "nats", traceId });
			msg.respond(JSON.stringify(result ?? null));
		} catch (err) {
			const body = toErrorBody(err, traceId);
			if (body.status >= 500) log.error(`${action} over NATS failed, trace ${traceId}:`, err);
			// The description travels in a header: one line.
			msg.respondError(body.status, body.message.replace(/[\r\n]+/g, " "), JSON.stringify(body));
		}
	}

	const endpoints = natsEndpoints();
	for (const endpoint of endpoints) {
		service.addEndpoint(endpoint.name, {
			subject: endpoint.subject,
			metadata: { action: endpoint.action },
			handler: (err, msg) => {
				if (err) log.warn(`NATS API endpoint ${endpoint.subject} stopped: ${err.message}`);
				else void handle(msg, endpoint.action);
			},
		});
	}
	log.info(`NATS API: ${NATS_SERVICE_NAME} ${version} serving ${endpoints.length} endpoints under ${subjects.allApi()}`);
	return {
		async stop() {
			await service.stop();
		},
	};
}
