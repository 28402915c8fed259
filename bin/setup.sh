#!/usr/bin/env bash
# Sets up a fresh machine: nats-server (Debian package) when missing, then the pinned npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

have_nats() { command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; }

if ! have_nats; then
	echo "setup: nats-server not found; installing the Debian package"
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q nats-server
	# The package may start a system service on 4222; the platform runs its own server and needs none.
fi
if ! have_nats; then
	echo "setup: nats-server is still missing after apt-get install" >&2
	exit 1
fi
echo "setup: $( (command -v nats-server || echo /usr/sbin/nats-server) ) $( (nats-server --version 2>/dev/null || /usr/sbin/nats-server --version) )"

echo "setup: installing npm dependencies from package-lock.json"
npm ci --no-audit --no-fund
