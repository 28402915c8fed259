import Ajv2020, { type AnySchema, type ErrorObject } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { SCHEMAS_DIR } from "./paths";

/** Every schema's `$id` is this base plus its path under `schemas/`, so an id tells where its file is. */
export const SCHEMA_BASE_URI = "https://savassan.dev/schemas/";

export interface FieldError {
	/** Dotted path of the offending field (`spec.epochs`, `items[2].name`); empty for the document itself. */
	field: string;
	message: string;
	keyword: string;
}

function listJsonFiles(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
		e.isDirectory() ? listJsonFiles(join(dir, e.name)) : e.name.endsWith(".json") ? [join(dir, e.name)] : [],
	);
}

function pathToField(instancePath: string): string {
	return instancePath
		.split("/")
		.slice(1)
		.map((seg) => seg.replace(/~1/g, "/").replace(/~0/g, "~"))
		.reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), "");
}

function join2(parent: string, child: string): string {
	return parent ? `${parent}.${child}` : child;
}

/** Ajv's errors as field-named messages a caller can act on. */
function toFieldErrors(errors: ErrorObject[] | null | undefined): FieldError[] {
	return (errors ?? []).map((e) => {
		const at = pathToField(e.instancePath);
		switch (e.keyword) {
			case "required":
				return { field: join2(at, e.params.missingProperty), message: "is required", keyword: e.keyword };
			case "additionalProperties":
				return { field: join2(at, e.params.additionalProperty), message: "is not allowed", keyword: e.keyword };
			case "enum":
				return {
					field: at,
					message: `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`,
					keyword: e.keyword,
				};
			default:
				return { field: at, message: e.message ?? "is invalid", keyword: e.keyword };
		}
	});
}

export function describeFieldErrors(errors: FieldError[]): string {
	return errors.map((e) => (e.field ? `'${e.field}' ${e.message}` : e.message)).join("; ");
}

export type Validator = (value: unknown) => FieldError[];

/**
 * All JSON Schemas of the platform, loaded once per process; each schema is compiled on first use and kept.
 * Validation fills declared defaults in place.
 */
export class SchemaRegistry {
	private readonly ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true });
	/** Each schema as written, by id: for reading a schema's shape (compiling a fragment as a schema of its own is not allowed). */
	private readonly written = new Map<string, unknown>();

	constructor(dirs: string[] = [SCHEMAS_DIR]) {
		addFormats(this.ajv);
		for (const dir of dirs) {
			for (const file of listJsonFiles(dir)) {
				let schema: { $id?: unknown };
				try {
					schema = JSON.parse(readFileSync(file, "utf8"));
				} catch (err) {
					throw new Error(`schema ${file} is not valid JSON: ${(err as Error).message}`);
				}
				const expected = SCHEMA_BASE_URI + relative(dir, file).split("\\").join("/");
				if (schema.$id !== expected) throw new Error(`schema ${file} must have "$id": "${expected}"`);
				this.ajv.addSchema(schema as AnySchema);
				this.written.set(expected, schema);
			}
		}
	}

	has(id: string): boolean {
		return this.ajv.getSchema(id) !== undefined;
	}

	/**
	 * The schema node `ref` names (a schema id, with or without a `#/json/pointer`), resolved against `base` as `$ref`s
	 * are; undefined when no registered schema has it. Returns the node's absolute id, the base for its own refs.
	 */
	node(ref: string, base?: string): { id: string; node: unknown } | undefined {
		const id = base ? new URL(ref, base).href : ref;
		const [file = "", pointer = ""] = id.split("#", 2);
		const node = pointer
			.split("/")
			.filter(Boolean)
			.reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], this.written.get(file));
		return node === undefined ? undefined : { id, node };
	}

	/** A validator for a registered schema id (Ajv compiles it on first use and keeps it). */
	validator(id: string): Validator {
		const validate = this.ajv.getSchema(id);
		if (!validate) throw new Error(`unknown schema ${id}`);
		return (value) => (validate(value) ? [] : toFieldErrors(validate.errors));
	}
}

let shared: SchemaRegistry | undefined;

/** The process-wide registry over `schemas/`. */
export function platformSchemas(): SchemaRegistry {
	shared ??= new SchemaRegistry();
	return shared;
}
