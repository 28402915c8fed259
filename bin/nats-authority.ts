#!/usr/bin/env node
/**
 * Sets up NATS operator mode for a deployment (compose or Kubernetes) the way the embedded server does it:
 *
 *   savassan-nats-authority <dir>
 *
 * reuses <dir>/authority.json (or creates it) and writes next to it:
 *   auth.conf        the servers' trust: operator JWT and preloaded accounts (public keys and JWTs only)
 *   platform.creds   what the platform's processes log in with (NATS_CREDS): a secret
 *   authority.json   the keys the execution service signs per-run sidecar credentials with (NATS_AUTHORITY):
 *                    a secret, for the execution service only
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { NatsAuthority } from "../lib/nats-auth";

async function main(): Promise<void> {
	const dir = process.argv[2];
	if (!dir) {
		process.stderr.write("usage: savassan-nats-authority <output folder>\n");
		process.exit(2);
	}
	const out = resolve(dir);
	const authority = NatsAuthority.loadOrCreate(join(out, "authority.json"));
	writeFileSync(join(out, "auth.conf"), `${await authority.serverConfig()}\n`, { mode: 0o644 });
	writeFileSync(join(out, "platform.creds"), await authority.platformCreds("platform"), { mode: 0o600 });
	process.stdout.write(`NATS operator-mode files in ${out}: auth.conf, platform.creds, authority.json\n`);
}

main().catch((err: Error) => {
	process.stderr.write(`savassan-nats-authority: ${err.message}\n`);
	process.exit(1);
});
