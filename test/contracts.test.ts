import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { EVENT_CATALOG } from "../events/catalog";
import { defineEvent } from "../events/definition";
import { STREAMS } from "../events/streams";
import { parseDeadLetterSubject, subjects } from "../events/subjects";
import { actionSchemaId } from "../lib/moleculer/params-validation.middleware";
import { SCHEMAS_DIR, PROJECT_ROOT } from "../lib/paths";
import { SCHEMA_BASE_URI, SchemaRegistry, platformSchemas } from "../lib/schemas";
import { SERVICE_FACTORIES } from "../services/index";
import { testConfig } from "./support/broker";

function jsonFiles(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
		e.isDirectory() ? jsonFiles(join(dir, e.name)) : e.name.endsWith(".json") ? [join(dir, e.name)] : [],
	);
}

describe("schemas/", () => {
	it("every schema compiles in strict mode and its $id is its path", () => {
		const registry = platformSchemas();
		const files = jsonFiles(SCHEMAS_DIR);
		assert.ok(files.length >= 6);
		for (const file of files) {
			const id = SCHEMA_BASE_URI + relative(SCHEMAS_DIR, file);
			assert.equal(JSON.parse(readFileSync(file, "utf8")).$id, id);
			assert.doesNotThrow(() => registry.validator(id), `${file} compiles`);
		}
	});

	it("refuses a schema whose $id does not match its file", () => {
		assert.throws(
			() => new SchemaRegistry([join(PROJECT_ROOT, "test", "fixtures", "bad-schemas")]),
			/schema .*wrong-id\.json must have "\$id": "https:\/\/savassan\.dev\/schemas\/wrong-id\.json"/,
		);
	});

	it("every event in the catalog has its schema, under a unique subject", () => {
		const registry = platformSchemas();
		for (const def of EVENT_CATALOG) assert.ok(registry.has(def.schemaId), `${def.type} has ${def.schemaId}`);
		const subs = EVENT_CATALOG.map((d) => d.subject);
		assert.equal(new Set(subs).size, subs.length);
	});

	it("every service's actions have a params schema", () => {
		const registry = platformSchemas();
		for (const [name, factory] of Object.entries(SERVICE_FACTORIES)) {
			for (const action of Object.keys(factory(testConfig(), { nats: { servers: [] } }).actions ?? {})) {
				assert.ok(registry.has(actionSchemaId(`${name}.${action}`)), `schemas/actions/${name}.${action}.json`);
			}
		}
	});

	it("names the offending field: required, nested, array items, extra properties, enums", () => {
		const registry = new SchemaRegistry([SCHEMAS_DIR, join(PROJECT_ROOT, "test", "fixtures", "schemas")]);
		const check = registry.validator(actionSchemaId("widgets.create"));
		assert.deepEqual(
			check({ spec: { size: 0, parts: [{ sku: "a" }, {}] }, extra: 1 }).map((e) => `${e.field}: ${e.message}`),
			["name: is required", "extra: is not allowed", "spec.size: must be >= 1", "spec.parts[1].sku: is required"],
		);
		assert.deepEqual(check({ name: "x", spec: { finish: "gold" } }), [
			{ field: "spec.finish", message: 'must be one of "matte", "gloss"', keyword: "enum" },
		]);
	});

	it("fills declared defaults", () => {
		const registry = new SchemaRegistry([SCHEMAS_DIR, join(PROJECT_ROOT, "test", "fixtures", "schemas")]);
		const params: Record<string, unknown> = { name: "x" };
		assert.deepEqual(registry.validator(actionSchemaId("widgets.create"))(params), []);
		assert.deepEqual(params, { name: "x", spec: { size: 3 } });
	});
});

describe("events/ subjects and streams", () => {
	it("builds each family of subjects", () => {
		assert.equal(subjects.domain("execution", "run", "started"), "evt.execution.run.started");
		assert.equal(subjects.telemetry("ws-1", "run-9", "heartbeat"), "tlm.ws-1.run-9.heartbeat");
		assert.equal(subjects.telemetryOfRun("ws-1", "run-9"), "tlm.ws-1.run-9.>");
		assert.equal(subjects.ingest("labelbox", "annotation"), "ingest.labelbox.annotation");
		assert.equal(subjects.audit("authz", "decision"), "audit.authz.decision");
		assert.equal(subjects.deadLetter("EVENTS", "catalog__x"), "dlq.EVENTS.catalog__x");
		assert.deepEqual(parseDeadLetterSubject("dlq.EVENTS.catalog__x"), { stream: "EVENTS", consumer: "catalog__x" });
		assert.equal(parseDeadLetterSubject("evt.a.b.c"), undefined);
	});

	it("refuses values that would widen or split a subject", () => {
		for (const bad of ["a.b", "*", ">", "a b", "", "run\n1", "ü"]) {
			assert.throws(() => subjects.telemetry("ws", bad, "heartbeat"), /is not a valid subject token/, JSON.stringify(bad));
		}
		assert.throws(() => subjects.ingest("src", "x.>"), /type "x\.>" is not a valid subject token/);
		assert.throws(() => defineEvent("a.b", "c", "d"), /context "a\.b"/);
	});

	it("every stream's subjects are disjoint, so no message lands in two streams", () => {
		const roots = Object.values(STREAMS).flatMap((s) => s.subjects.map((x) => x.split(".")[0]));
		assert.equal(new Set(roots).size, roots.length);
	});
});
