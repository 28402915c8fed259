import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { SCHEMAS_DIR } from "../../lib/paths";

/**
 * GET and DELETE take their params from the query string, where every value is text. Each value is turned into the
 * type the action's params schema (`schemas/actions/<action>.json`) declares for it, so `limit=5` arrives as 5 and
 * `workspaces=a,b` (or `workspaces=a&workspaces=b`) as ["a", "b"]. A value that does not read as its type is passed
 * on as text: the action's validation then answers 422 naming the field, as for any other wrong value.
 */

type Scalar = "integer" | "number" | "boolean" | "string";
export type ParamKind = Scalar | { array: Scalar };

interface SchemaNode {
	$ref?: string;
	type?: string | string[];
	items?: SchemaNode;
	properties?: Record<string, SchemaNode>;
}

const files = new Map<string, Record<string, unknown>>();

function schemaFile(path: string): Record<string, unknown> {
	let file = files.get(path);
	if (!file) files.set(path, (file = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>));
	return file;
}

/** Follows `$ref`s (relative file plus JSON pointer, as the platform's schemas write them) to the node they name. */
function resolve(node: SchemaNode, file: string): SchemaNode {
	for (let hops = 0; node.$ref && hops < 8; hops++) {
		const [target = "", pointer = ""] = node.$ref.split("#", 2);
		if (target) file = join(dirname(file), target);
		if (relative(SCHEMAS_DIR, file).startsWith("..")) throw new Error(`schema reference ${node.$ref} leaves schemas/`);
		node = pointer
			.split("/")
			.filter(Boolean)
			.reduce<unknown>((at, key) => (at as Record<string, unknown>)?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], schemaFile(file)) as SchemaNode;
		if (!node) throw new Error(`schema reference ${pointer} not found in ${file}`);
	}
	return node;
}

function scalarOf(node: SchemaNode): Scalar {
	const types = Array.isArray(node.type) ? node.type : node.type ? [node.type] : [];
	return (["integer", "number", "boolean"] as const).find((t) => types.includes(t)) ?? "string";
}

const shapes = new Map<string, ReadonlyMap<string, ParamKind>>();

/** The declared kind of each top-level param of an action, read once from its schema. */
export function queryShapeOf(action: string): ReadonlyMap<string, ParamKind> {
	let shape = shapes.get(action);
	if (shape) return shape;
	const file = join(SCHEMAS_DIR, "actions", `${action}.json`);
	const properties = (schemaFile(file) as SchemaNode).properties ?? {};
	shape = new Map(
		Object.entries(properties).map(([name, raw]): [string, ParamKind] => {
			const node = resolve(raw, file);
			return [name, node.type === "array" ? { array: node.items ? scalarOf(resolve(node.items, file)) : "string" } : scalarOf(node)];
		}),
	);
	shapes.set(action, shape);
	return shape;
}

/** A text value as `kind` when it reads as one, else the text itself. */
export function coerceParam(value: string, kind: Scalar): unknown {
	switch (kind) {
		case "integer":
			return /^-?\d{1,15}$/.test(value) ? Number(value) : value;
		case "number":
			return value.trim() !== "" && Number.isFinite(Number(value)) ? Number(value) : value;
		case "boolean":
			return value === "true" ? true : value === "false" ? false : value;
		case "string":
			return value;
	}
}

/** The params of a query string (without the `?`), typed after `shape`; names the schema does not know stay text. */
export function paramsFromQuery(query: string, shape: ReadonlyMap<string, ParamKind>): Record<string, unknown> {
	const search = new URLSearchParams(query);
	const params: Record<string, unknown> = {};
	for (const name of new Set(search.keys())) {
		const values = search.getAll(name);
		const kind = shape.get(name) ?? "string";
		if (typeof kind === "object") {
			// `a,b` and repeated names both make a list; an empty value makes an empty list (`types=` → []).
			params[name] = values.flatMap((v) => (v === "" ? [] : v.split(","))).map((v) => coerceParam(v, kind.array));
		} else {
			// A repeated single value is passed on as a list, which the validation refuses by name.
			const typed = values.map((v) => coerceParam(v, kind));
			params[name] = typed.length === 1 ? typed[0] : typed;
		}
	}
	return params;
}
