import type { Service, ServiceBroker, ServiceSchema } from "moleculer";
import type { us_listen_socket } from "uWebSockets.js";
import { busOf } from "../../lib/moleculer/bus.middleware";
import { loadUws } from "../../lib/uws";
import { mountApi, type ApiSettings } from "./api";
import { openBlobRoutes, type BlobRouteSettings } from "./blob-routes";
import { mountDashboard } from "./dashboard/dashboard";
import { traceIdOf } from "./edge";
import { readiness } from "./health";
import { sendError, sendJson } from "./http";
import { startIngestGate, type IngestGate } from "./ingest-gate";
import { openLive, type Live, type LiveSettings } from "./live/live";
import { startNatsApi, type NatsApi } from "./nats-api";

export interface GatewaySettings {
	host: string;
	/** 0 picks a free port; the chosen one is in `address`. */
	port: number;
	/** Serve the embedded blob store's signed URLs (`/v1/blobs/<token>`). */
	blobs?: BlobRouteSettings;
	/** The HTTP JSON API under `/v1/`. */
	api?: ApiSettings;
	/** The live WebSocket `/v1/live`. */
	live?: LiveSettings;
	/** The dashboard page at `/`. */
	dashboard?: boolean;
	/** Selected actions over the NATS services API (`savassan.v1.*`). */
	natsApi?: boolean;
	/** The gate of external producers' events (`ingest.<source>.<type>`). */
	ingest?: boolean;
}

interface GatewayThis extends Service {
	listenSocket?: us_listen_socket;
	live?: Live;
	natsApi?: NatsApi;
	ingestGate?: IngestGate;
	/** `http://host:port` once listening. */
	address?: string;
}

/** False also while the broker is starting or stopping (no bus attached): a request then must not throw. */
function busConnected(broker: ServiceBroker): boolean {
	try {
		return busOf(broker).connected;
	} catch {
		return false;
	}
}

/**
 * The edges of the platform in one process: HTTP API, live WebSocket, dashboard and the embedded blob store's URLs
 * on one uWebSockets.js port; the NATS services API and the ingest gate on the bus. Each part is optional so a
 * deployment (or a test) runs only what it needs.
 */
export function gatewayService(settings: GatewaySettings): ServiceSchema {
	return {
		name: "gateway",
		// The blob routes' settings may hold the signing key: never published to other nodes.
		settings: { ...settings, $secureSettings: ["blobs"] },
		async started(this: GatewayThis) {
			const uws = loadUws();
			const { host, port, blobs, api, live, dashboard, natsApi, ingest } = this.settings as GatewaySettings;
			const bus = busOf(this.broker);
			const app = uws.App();
			if (blobs) (await openBlobRoutes(blobs, bus.js))(app);
			if (live) this.live = await openLive(app, { broker: this.broker, bus, settings: live });
			if (api) mountApi(app, { broker: this.broker, schemas: bus.schemas, settings: api });
			if (dashboard) mountDashboard(app);
			if (natsApi) this.natsApi = await startNatsApi({ broker: this.broker, bus });
			if (ingest) this.ingestGate = await startIngestGate({ broker: this.broker, bus });
			app
				.get("/healthz", (res) => sendJson(res, 200, { status: "ok" }))
				.get("/readyz", (res) => {
					const report = readiness({
						node: this.broker.nodeID,
						busConnected: busConnected(this.broker),
						// Typed as schemas by Moleculer, but each entry is a registry item with its nodeID.
						services: this.broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as unknown as {
							name: string;
							nodeID: string;
						}[],
					});
					sendJson(res, report.status === "ready" ? 200 : 503, report);
				})
				.any("/*", (res, req) => {
					const traceId = traceIdOf(req.getHeader("x-trace-id"));
					const message = `no route ${req.getMethod().toUpperCase()} ${req.getUrl()}`;
					sendError(res, { status: 404, code: "NOT_FOUND", message, trace_id: traceId }, false, { "x-trace-id": traceId });
				});
			this.listenSocket = await new Promise<us_listen_socket>((resolve, reject) =>
				app.listen(host, port, (socket) =>
					socket
						? resolve(socket)
						: reject(new Error(`gateway cannot listen on ${host}:${port} (in use or not allowed); set GATEWAY_HOST/GATEWAY_PORT`)),
				),
			);
			this.address = `http://${host}:${uws.us_socket_local_port(this.listenSocket as never)}`;
			this.logger.info(`gateway listening on ${this.address}`);
		},
		async stopped(this: GatewayThis) {
			if (this.listenSocket) loadUws().us_listen_socket_close(this.listenSocket);
			this.listenSocket = undefined;
			await Promise.all([this.live?.close(), this.natsApi?.stop(), this.ingestGate?.stop()]);
		},
	};
}
