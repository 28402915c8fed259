import type { ServiceBroker } from "moleculer";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BOOTSTRAP_ADMIN } from "../../services/authz/authz.service";
import type { TokenPair } from "../../services/authz/identity/tokens";
import { gatewayService, type GatewaySettings } from "../../services/gateway/gateway.service";
import { SERVICE_FACTORIES } from "../../services/index";
import { startBroker, testConfig } from "./broker";
import { startTestNats, type TestNats } from "./nats";

/**
 * The whole platform on one broker, as the edges see it: its own operator-mode nats-server (so runs really run,
 * with their sidecar credentials), every service, an admin, and a gateway on a free port with the parts asked for.
 */
export interface EdgePlatform {
	nats: TestNats;
	broker: ServiceBroker;
	dataDir: string;
	/** `http://127.0.0.1:<port>` of the gateway. */
	url: string;
	adminPassword: string;
	/** The bootstrap admin's tokens. */
	admin: TokenPair;
	/** Creates (or updates) a user with a password and binds it to `role` in each workspace of `workspaces`. */
	addUser(id: string, role: "viewer" | "editor" | "admin", workspaces: string[]): Promise<void>;
	/** Signs a user in through the authz service (an edge call, as the HTTP API makes it). */
	login(username: string, password?: string): Promise<TokenPair>;
	close(): Promise<void>;
}

export const USER_PASSWORD = "a-long-enough-password";
const ADMIN_PASSWORD = "admin-password-for-edge-tests";

export async function startEdgePlatform(name: string, gateway: Omit<GatewaySettings, "host" | "port">, env: Record<string, string> = {}): Promise<EdgePlatform> {
	const nats = await startTestNats({ operator: true });
	const dataDir = mkdtempSync(join(tmpdir(), `savassan-${name}-`));
	const fullEnv = { DATA_DIR: dataDir, NATS_AUTHORITY: nats.authorityFile!, AUTHZ_ADMIN_PASSWORD: ADMIN_PASSWORD, RUN_HEARTBEAT_INTERVAL_MS: "200", ...env };
	const config = testConfig(fullEnv);
	const services = Object.entries(SERVICE_FACTORIES)
		.filter(([service]) => service !== "gateway")
		.map(([, factory]) => factory(config, { nats: nats.endpoint }));
	let broker: ServiceBroker | undefined;
	try {
		broker = await startBroker(nats.endpoint, `${name}-1`, [...services, gatewayService({ host: "127.0.0.1", port: 0, ...gateway })], fullEnv);
	} catch (err) {
		await nats.stop();
		rmSync(dataDir, { recursive: true, force: true });
		throw err;
	}
	const b = broker;
	const edge = <T>(action: string, params: object, bearer?: string) =>
		b.call<T, object>(action, params, { meta: { edge: true, source: "test", ...(bearer ? { auth: { bearer } } : {}) } });
	const login = (username: string, password = USER_PASSWORD) => edge<TokenPair>("authz.login", { username, password });
	const admin = await login(BOOTSTRAP_ADMIN, ADMIN_PASSWORD);
	const url = (b.getLocalService("gateway") as unknown as { address: string }).address;
	return {
		nats,
		broker: b,
		dataDir,
		url,
		adminPassword: ADMIN_PASSWORD,
		admin,
		login,
		async addUser(id, role, workspaces) {
			await edge("authz.users.put", { id, name: id, password: USER_PASSWORD }, admin.access_token);
			for (const ws of workspaces) {
				await edge("authz.workspaces.put", { id: ws, name: ws }, admin.access_token);
				await edge("authz.bindings.add", { subject: { kind: "user", id }, role, scope: ws }, admin.access_token);
			}
		},
		async close() {
			await b.stop();
			await nats.stop();
			rmSync(dataDir, { recursive: true, force: true });
		},
	};
}
