import assert from "node:assert/strict";
import { isAbsolute } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, loadConfig, maskUrl } from "../lib/config";
import { Writable } from "node:stream";
import pino from "pino";
import { createLogger, pinoOptions } from "../lib/logger";

const KNOWN = ["gateway", "deadletters"];

describe("configuration from the environment", () => {
	it("has sane defaults: embedded NATS, every service, loopback gateway on 8080", () => {
		const c = loadConfig({}, KNOWN);
		assert.deepEqual(c.natsServers, []);
		assert.deepEqual(c.services, []);
		assert.equal(c.gatewayHost, "127.0.0.1");
		assert.equal(c.gatewayPort, 8080);
		assert.equal(c.logLevel, "info");
		assert.equal(c.streamReplicas, 1);
		assert.ok(isAbsolute(c.dataDir) && c.dataDir.endsWith("/data"));
		assert.deepEqual(c.events, { maxDeliveries: 5, ackWaitMs: 30_000, retryBaseMs: 500 });
	});

	it("reads a cluster and a service split", () => {
		const c = loadConfig({ NATS_URL: "nats://a:4222, nats://b:4222", SERVICES: "gateway", GATEWAY_PORT: "0" }, KNOWN);
		assert.deepEqual(c.natsServers, ["nats://a:4222", "nats://b:4222"]);
		assert.deepEqual(c.services, ["gateway"]);
		assert.equal(c.gatewayPort, 0);
	});

	it("reports every bad variable at once, each with what is expected", () => {
		const err = ((): unknown => {
			try {
				loadConfig(
					{
						NATS_URL: "http://user:hunter2@x:1",
						SERVICES: "gateway,billing",
						GATEWAY_PORT: "80a",
						LOG_LEVEL: "loud",
						STREAM_REPLICAS: "7",
						EVENT_MAX_DELIVERIES: "0",
						NODE_ID: "a.b",
					},
					KNOWN,
				);
			} catch (e) {
				return e;
			}
			return undefined;
		})();
		assert.ok(err instanceof ConfigError);
		assert.deepEqual(err.problems, [
			'NATS_URL: "http://user:***@x:1" is not a nats://host:port URL',
			'SERVICES: unknown service "billing" (known: gateway, deadletters)',
			'NODE_ID="a.b": use letters, digits, \'-\' and \'_\' only',
			'LOG_LEVEL="loud": expected one of fatal, error, warn, info, debug, trace',
			'GATEWAY_PORT="80a": expected a whole number from 0 to 65535',
			'STREAM_REPLICAS="7": expected a whole number from 1 to 5',
			'EVENT_MAX_DELIVERIES="0": expected a whole number from 1 to 100',
		]);
		assert.doesNotMatch(err.message, /hunter2/, "no secret in the error");
	});

	it("masks credentials in URLs", () => {
		assert.equal(maskUrl("nats://alice:s3cret@h:4222"), "nats://alice:***@h:4222");
		assert.equal(maskUrl("nats://tok3n@h:4222"), "nats://***@h:4222");
		assert.equal(maskUrl("nats://h:4222"), "nats://h:4222");
	});
});

describe("logging", () => {
	it("redacts secrets wherever they sit in a logged object", () => {
		let out = "";
		const sink = new Writable({
			write(chunk, _enc, cb) {
				out += chunk;
				cb();
			},
		});
		const log = pino(pinoOptions("info"), sink);
		log.info({ user: { password: "pw1" }, token: "tk2", req: { headers: { authorization: "Bearer xyz" } }, nested: { apiKey: "k3" } }, "login");
		assert.doesNotMatch(out, /pw1|tk2|xyz|k3/);
		assert.match(out, /"password":"\*\*\*"/);
		assert.ok(createLogger("info"));
	});
});
