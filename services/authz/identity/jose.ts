/**
 * jose 6 is an ES module only. A static import does not compile from this CommonJS project (module node16 reports
 * TS1479), although Node 20.20 could require() it; a real dynamic import compiles cleanly, does not depend on
 * require(esm), and is how the kubernetes runtime loads its ES-module client. Loaded once, on first use.
 */
import type * as Jose from "jose" with { "resolution-mode": "import" };

export type JoseModule = typeof Jose;
export type { JWK, JWTPayload, CryptoKey } from "jose" with { "resolution-mode": "import" };

let loading: Promise<JoseModule> | undefined;

export function loadJose(): Promise<JoseModule> {
	return (loading ??= import("jose"));
}
