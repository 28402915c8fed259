import type { Service, ServiceBroker, ServiceSchema } from "moleculer";
import type { us_listen_socket } from "uWebSockets.js";
import { busOf } from "../../lib/moleculer/bus.middleware";
import { loadUws } from "../../lib/uws";
import { openBlobRoutes, type BlobRouteSettings } from "./blob-routes";
import { readiness } from "./health";
import { sendError, sendJson } from "./http";

export interface GatewaySettings {
	host: string;
	/** 0 picks a free port; the chosen one is in `address`. */
	port: number;
	/** Serve the embedded blob store's signed URLs (`/v1/blobs/<token>`). */
	blobs?: BlobRouteSettings;
}

interface GatewayThis extends Service {
	listenSocket?: us_listen_socket;
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

/** The HTTP/WebSocket entry point (uWebSockets.js). Today: liveness, readiness and the embedded blob store's URLs. */
export function gatewayService(settings: GatewaySettings): ServiceSchema {
	return {
		name: "gateway",
		// The blob routes' settings may hold the signing key: never published to other nodes.
		settings: { ...settings, $secureSettings: ["blobs"] },
		async started(this: GatewayThis) {
			const uws = loadUws();
			const { host, port, blobs } = this.settings as GatewaySettings;
			const app = uws.App();
			if (blobs) (await openBlobRoutes(blobs, busOf(this.broker).js))(app);
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
				.any("/*", (res, req) =>
					sendError(res, { status: 404, code: "NOT_FOUND", message: `no route ${req.getMethod().toUpperCase()} ${req.getUrl()}` }),
				);
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
		stopped(this: GatewayThis) {
			if (this.listenSocket) loadUws().us_listen_socket_close(this.listenSocket);
			this.listenSocket = undefined;
		},
	};
}
