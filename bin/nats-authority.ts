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
 *
 * and, with the same authority, credentials for those outside the platform (each a secret, mode 0600):
 *
 *   savassan-nats-authority <dir> client <name>      <dir>/<name>.creds: a NATS services API client (savassan.v1.*)
 *                                                    connecting with inboxPrefix "_INBOX_client_<name>"
 *   savassan-nats-authority <dir> producer <source>  <dir>/<source>.creds: an external producer publishing
 *                                                    only to ingest.<source>.<type>, inboxPrefix "_INBOX_producer_<source>"
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { subjects } from "../events/subjects";
import { NatsAuthority } from "../lib/nats-auth";

const USAGE = "usage: savassan-nats-authority <output folder> [client <name> | producer <source>]\n";

async function main(): Promise<void> {
	const [dir, kind, name] = process.argv.slice(2);
	if (!dir || (kind !== undefined && !((kind === "client" || kind === "producer") && name))) {
		process.stderr.write(USAGE);
		process.exit(2);
	}
	const out = resolve(dir);
	const authority = NatsAuthority.loadOrCreate(join(out, "authority.json"));
	if (kind === "client" || kind === "producer") {
		const creds = kind === "client" ? await authority.clientCreds(name!) : await authority.producerCreds(name!);
		const inbox = kind === "client" ? subjects.inboxOfClient(name!) : subjects.inboxOfProducer(name!);
		const file = join(out, `${name}.creds`);
		writeFileSync(file, creds, { mode: 0o600 });
		chmodSync(file, 0o600); // also when it replaces an older file
		process.stdout.write(`NATS ${kind} credentials in ${file}; connect with inboxPrefix "${inbox}"\n`);
		return;
	}
	writeFileSync(join(out, "auth.conf"), `${await authority.serverConfig()}\n`, { mode: 0o644 });
	writeFileSync(join(out, "platform.creds"), await authority.platformCreds("platform"), { mode: 0o600 });
	process.stdout.write(`NATS operator-mode files in ${out}: auth.conf, platform.creds, authority.json\n`);
}

main().catch((err: Error) => {
	process.stderr.write(`savassan-nats-authority: ${err.message}\n`);
	process.exit(1);
});
