import type { SchemaRegistry } from "../../lib/schemas";
import { actionSchemaId } from "../../lib/moleculer/params-validation.middleware";

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

/**
 * Follows `$ref`s (as the platform's schemas write them: relative id plus JSON pointer) to the node they name, and
 * the id its own refs are relative to.
 */
function resolve(schemas: SchemaRegistry, node: SchemaNode, base: string): { node: SchemaNode; base: string } {
	for (let hops = 0; node.$ref && hops < 8; hops++) {
		const target = schemas.node(node.$ref, base);
		if (!target) throw new Error(`schema reference ${node.$ref} (from ${base}) names no registered schema`);
		base = target.id;
		node = target.node as SchemaNode;
	}
	return { node, base };
}

function scalarOf(node: SchemaNode): Scalar {
	const types = Array.isArray(node.type) ? node.type : node.type ? [node.type] : [];
	return (["integer", "number", "boolean"] as const).find((t) => types.includes(t)) ?? "string";
}

/** The declared kind of each top-level param of an action, from its params schema. */
export function queryShapeOf(schemas: SchemaRegistry, action: string): ReadonlyMap<string, ParamKind> {
	const id = actionSchemaId(action);
	const schema = schemas.node(id);
	if (!schema) throw new Error(`action ${action} has no params schema`);
	return new Map(
		Object.entries((schema.node as SchemaNode).properties ?? {}).map(([name, raw]): [string, ParamKind] => {
			const { node, base } = resolve(schemas, raw, id);
			return [name, node.type === "array" ? { array: node.items ? scalarOf(resolve(schemas, node.items, base).node) : "string" } : scalarOf(node)];
		}),
	);
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
