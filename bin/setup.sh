#!/usr/bin/env bash
# Sets up a fresh machine: nats-server and chromium (Debian packages) when missing, then the pinned npm dependencies.
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

# The dashboard's tests drive Debian's Chromium (playwright-core brings no browser of its own).
if ! [ -x /usr/bin/chromium ]; then
	echo "setup: chromium not found; installing the Debian package (used by the dashboard's browser tests)"
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium
fi

echo "setup: installing npm dependencies from package-lock.json"
npm ci --no-audit --no-fund
