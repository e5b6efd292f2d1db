#!/bin/sh
# Installs the Debian packages dockyard's tests and demo drive: ip (iproute2), the iptables
# front ends (legacy and nft), nft itself, mkfs.btrfs and mkfs.xfs (throwaway filesystems with
# reflinks for the vfs migration), the venv module for the Python environment, and a real
# Docker daemon (docker.io: dockerd, containerd, runc) with busybox-static for the test image that
# devtools/dockerd.py runs privately inside a test network namespace.
set -eu
missing=""
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v iptables-legacy-restore >/dev/null 2>&1 || missing="$missing iptables"
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v flock >/dev/null 2>&1 || missing="$missing util-linux"
command -v sqlite3 >/dev/null 2>&1 || missing="$missing sqlite3"  # bench/baseline.sh
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"  # verifies the role's units
# the vfs migration's tests and benchmark make small btrfs and xfs filesystems (reflinks)
command -v mkfs.btrfs >/dev/null 2>&1 || missing="$missing btrfs-progs"
command -v mkfs.xfs >/dev/null 2>&1 || missing="$missing xfsprogs"
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || missing="$missing docker.io"
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' \
    || missing="$missing busybox-static"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "dockyard: missing Debian packages:$missing; install them as root (apt-get install$missing)" >&2
    exit 1
fi
echo "dockyard: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Installing docker.io must not start the machine's own Docker daemon: the tests only ever run a
# private one. Without a policy-rc.d (containers' images ship one) invoke-rc.d would start it.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
