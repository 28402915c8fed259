import { Errors, type ActionHandler, type ActionSchema, type Context, type Middleware } from "moleculer";
import { isStorageFull } from "../../events/store-errors";
import { defineMiddleware } from "./middleware";

/**
 * Every action whose write JetStream refused for lack of room answers 507 STORAGE_FULL with a sentence naming the
 * cause and the way out, instead of JetStream's terse error; the service itself keeps serving.
 */
export function StoreErrorsMiddleware(): Middleware {
	return defineMiddleware({
		name: "StoreErrors",
		localAction(next: ActionHandler, action: ActionSchema) {
			const name = action.name as string;
			return function mapStoreErrors(ctx: Context) {
				return (next(ctx) as Promise<unknown>).catch((err: unknown) => {
					if (!isStorageFull(err)) throw err;
					const cause = (err as Error).message;
					throw new Errors.MoleculerServerError(
						`${name} could not store its changes: JetStream is out of storage (${cause}); free space (purge or raise the storage limits) and try again`,
						507,
						"STORAGE_FULL",
						{ action: name, cause },
					);
				});
			};
		},
	});
}
