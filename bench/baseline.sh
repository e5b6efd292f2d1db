#!/bin/sh
# The imperative baseline: what Docker 1.x's start-up does for the reconcilers dockyard has,
# done with plain tools and no checks beyond what the tools themselves make. `make bench`
# times this beside `reconcile` in the same namespace set-up and prints the ratio.
#
# usage: baseline.sh ROOT PIDFILE RESOLV_CONF
set -eu
root=$1
pidfile=$2
resolv=$3

# preflight: OS, root, kernel, architecture
[ "$(uname -s)" = Linux ]
[ "$(id -u)" = 0 ]
uname -r >/dev/null
[ "$(uname -m)" = x86_64 ]

# directories
for d in "$root" "$root/containers" "$root/graph" "$root/volumes" "$root/init" \
         "$root/execdriver" "$root/execdriver/native" "$root/tmp"; do
    mkdir -p "$d"
    chmod 0700 "$d"
    chown 0:0 "$d"
done

# pidfile: remove a stale one
if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$pidfile"; fi
fi

# bridge: Docker 1.x's first candidate, MTU 1500, its own MAC (dockyard's, derived from the
# name: Docker 1.x gave the bridge a MAC of its own), up
if ! ip link show docker0 >/dev/null 2>&1; then
    ip link add docker0 mtu 1500 address 02:de:ad:65:4d:be type bridge
    ip addr add 172.17.42.1/16 dev docker0
fi
ip link set docker0 up

# ip_forward
sysctl -q -w net.ipv4.ip_forward=1

# iptables, as Docker 1.x did it: check each rule, insert it when missing
ipt() { iptables -w "$@"; }
ensure() {
    table=$1; chain=$2; shift 2
    ipt -t "$table" -C "$chain" "$@" 2>/dev/null || ipt -t "$table" -I "$chain" "$@"
}
# (the same rules as dockyard's: the daemon's chains made, its own chains for published ports)
ipt -t nat -N DOCKER 2>/dev/null || true
ipt -t nat -N DOCKYARD 2>/dev/null || true
ipt -t nat -N DOCKYARD-HAIRPIN 2>/dev/null || true
ensure nat PREROUTING -m addrtype --dst-type LOCAL -j DOCKYARD
ensure nat OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKYARD
ensure nat POSTROUTING -s 172.17.0.0/16 -d 172.17.0.0/16 -o docker0 -j DOCKYARD-HAIRPIN
ensure nat POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
ipt -N DOCKER 2>/dev/null || true
ipt -N DOCKYARD 2>/dev/null || true
ipt -N DOCKER-USER 2>/dev/null || true
ensure filter FORWARD -i docker0 -o docker0 -j ACCEPT
ensure filter FORWARD -i docker0 ! -o docker0 -j ACCEPT
ensure filter FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
ensure filter FORWARD -o docker0 -j DOCKYARD
ensure filter FORWARD -j DOCKER-USER

# storage: Docker 1.x's priority, probed (aufs, btrfs, devicemapper are absent here), then
# overlay with a test mount; its layout, the volumes' vfs layout, the tag store
probe=$(mktemp -d "$root/.probe-XXXXXX")
mkdir "$probe/l" "$probe/u" "$probe/w" "$probe/m"
grep -q aufs /proc/filesystems || true
[ "$(stat -f -c %T "$root")" = btrfs ] || true
mount -t overlay overlay -o "lowerdir=$probe/l,upperdir=$probe/u,workdir=$probe/w" "$probe/m"
umount "$probe/m"
rm -rf "$probe"
mkdir -p "$root/overlay"
chmod 0755 "$root/overlay"
for d in vfs vfs/dir; do mkdir -p "$root/$d"; chmod 0700 "$root/$d"; done
if [ ! -e "$root/repositories-overlay" ]; then
    printf '%s' '{"Repositories":{}}' > "$root/repositories-overlay"
    chmod 0600 "$root/repositories-overlay"
fi

# container DNS: the host's resolv.conf without loopback resolvers
grep -v '^nameserver 127\.' "$resolv" > "$root/resolv.conf"

# link graph: Docker's schema and root entity
sqlite3 "$root/linkgraph.db" < "$(dirname "$0")/docker_default/linkgraph.sql"
chmod 0600 "$root/linkgraph.db"
