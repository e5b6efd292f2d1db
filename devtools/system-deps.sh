#!/bin/sh
# Installs the Debian packages dockyard's tests and demo drive: ip (iproute2), the iptables
# front ends (legacy and nft), nft itself, and the venv module for the Python environment.
set -eu
missing=""
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v iptables-legacy-restore >/dev/null 2>&1 || missing="$missing iptables"
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v flock >/dev/null 2>&1 || missing="$missing util-linux"
command -v sqlite3 >/dev/null 2>&1 || missing="$missing sqlite3"  # bench/baseline.sh
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"  # verifies the role's units
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "dockyard: missing Debian packages:$missing; install them as root (apt-get install$missing)" >&2
    exit 1
fi
echo "dockyard: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
