import { Errors, type ActionHandler, type ActionSchema, type Context, type Middleware } from "moleculer";
import { defineMiddleware } from "./middleware";
import { SCHEMA_BASE_URI, describeFieldErrors, type SchemaRegistry } from "../schemas";

/** Where the params schema of an action lives: `schemas/actions/<service>.<action>.json`. */
export function actionSchemaId(actionName: string): string {
	return `${SCHEMA_BASE_URI}actions/${actionName}.json`;
}

/**
 * Checks every call's params against the action's JSON Schema before the handler runs, on the node that serves
 * the action (so calls from any node or client are checked). An action without a schema fails the broker's start:
 * nothing is callable unchecked. Invalid params are a 422 ValidationError whose data names each field.
 */
export function ParamsValidationMiddleware(schemas: SchemaRegistry): Middleware {
	return defineMiddleware({
		name: "ParamsValidation",
		localAction(next: ActionHandler, action: ActionSchema) {
			const name = action.name as string;
			if (name.startsWith("$")) return next; // Moleculer's own $node.* actions
			const id = actionSchemaId(name);
			if (!schemas.has(id)) {
				throw new Errors.ServiceSchemaError(`action ${name} has no params schema: add schemas/actions/${name}.json`, { action: name });
			}
			const check = schemas.validator(id);
			return function validateParams(ctx: Context) {
				if (ctx.params === null || ctx.params === undefined) ctx.params = {};
				const problems = check(ctx.params);
				if (problems.length) {
					// Rejected, not thrown: a local call's caller gets a promise either way.
					return Promise.reject(
						new Errors.ValidationError(`invalid params for ${name}: ${describeFieldErrors(problems)}`, "INVALID_PARAMS", {
							action: name,
							fields: problems,
						}),
					);
				}
				return next(ctx);
			};
		},
	});
}
