#!/usr/bin/env bash
# Installs the Debian packages named on the command line when they are missing.
# Idempotent: does nothing (and needs no network) when every package is installed.
set -euo pipefail
missing=()
for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "vigie: installing Debian packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "vigie: missing Debian packages (${missing[*]}) and not root: install them with apt-get" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts packaged daemons on install; Vigie's tests start their own copies on free
# loopback ports, so stop the system ones (a no-op where there is no init system).
for svc in prometheus prometheus-alertmanager prometheus-blackbox-exporter prometheus-node-exporter nginx postgresql; do
    if [[ " ${missing[*]} " == *" ${svc} "* || " ${missing[*]} " == *" ${svc}-light "* ]]; then
        $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
done
exit 0
