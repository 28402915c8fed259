import { dirname, join } from "node:path";
import type * as UWS from "uWebSockets.js";

/**
 * Loads the native uWebSockets.js binary. The package's own entry point quietly falls back to a pure-JS server when
 * the binary does not load; a gateway that is ten times slower without saying so is worse than one that refuses
 * to start, so the binary is required directly and a failure names the cause.
 */
export function loadUws(): typeof UWS {
	const pkgDir = dirname(require.resolve("uWebSockets.js/package.json"));
	const binary = join(pkgDir, "binaries", `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
	try {
		return require(binary) as typeof UWS;
	} catch (err) {
		throw new Error(
			`uWebSockets.js native binary failed to load (${binary}) on Node ${process.version}: ${(err as Error).message}. ` +
				"The gateway does not fall back to a JS server; reinstall dependencies on a supported platform.",
		);
	}
}
