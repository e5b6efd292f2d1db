"""Docker 1.x's default host, as a pyinfra deploy: what `make bench` times beside dockyard.

Written the way a pyinfra user would: built-in operations where pyinfra has them (directories,
files, sysctl, iptables chains and rules), facts plus a conditional shell operation where it has
none (the bridge, the link graph). Every operation decides from facts, so a second run changes
nothing. Paths come as data: `pyinfra @local pyinfra_deploy.py --data root=... --data
pidfile=... --data resolv_conf=...`.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.facts.files import File
from pyinfra.facts.server import Arch, Command, KernelVersion, Os
from pyinfra.operations import files, iptables, server

BRIDGE = "docker0"
ADDRESS = "172.17.42.1/16"
SUBNET = "172.17.0.0/16"
MTU = 1500
MAC = "02:de:ad:65:4d:be"  # dockyard's for docker0, derived from the name
GRAPH_SQL = Path(__file__).with_name("linkgraph.sql")


class Link(FactBase[dict[str, Any]]):
    """One link as `ip -j addr` shows it; {} when there is none."""

    default = dict

    def command(self, link: str) -> str:
        return f"ip -j addr show dev {link} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, Any]:
        links: list[dict[str, Any]] = json.loads("\n".join(output) or "[]")
        return links[0] if links else {}


root: str = host.data.root
pidfile: str = host.data.pidfile
resolv_conf: str = host.data.resolv_conf

# preflight, as Docker checked it at start
assert host.get_fact(Os) == "Linux", "Docker runs on Linux only"
assert host.get_fact(Command, "id -u") == "0", "must run as root"
kernel = tuple(int(part) for part in host.get_fact(KernelVersion).split(".")[:2])
assert kernel >= (3, 8), "Docker needs kernel 3.8 or later"
assert host.get_fact(Arch) == "x86_64", "Docker runs on amd64 only"

for sub in (
    "",
    "/containers",
    "/graph",
    "/volumes",
    "/init",
    "/execdriver",
    "/execdriver/native",
    "/tmp",
):
    files.directory(
        name=f"directory {root}{sub}", path=f"{root}{sub}", user="root", group="root", mode="700"
    )

# a stale pid file (its process gone) is removed; a live one is left alone
if host.get_fact(File, path=pidfile):
    pid = host.get_fact(Command, f"cat {pidfile}")
    if not host.get_fact(Command, f"kill -0 {pid} 2>/dev/null && echo live || true"):
        files.file(name="stale pid file", path=pidfile, present=False)

link = host.get_fact(Link, BRIDGE)
addresses = {f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", ())}
steps = []
if not link:
    steps.append(f"ip link add {BRIDGE} mtu {MTU} address {MAC} type bridge")
else:
    if link.get("mtu") != MTU:
        steps.append(f"ip link set {BRIDGE} mtu {MTU}")
    if link.get("address") != MAC:
        steps.append(f"ip link set {BRIDGE} address {MAC}")
if ADDRESS not in addresses:
    steps.append(f"ip addr add {ADDRESS} dev {BRIDGE}")
if "UP" not in link.get("flags", ()):
    steps.append(f"ip link set {BRIDGE} up")
if steps:
    server.shell(name=f"bridge {BRIDGE}", commands=steps)

server.sysctl(name="ip_forward", key="net.ipv4.ip_forward", value=1)

for table, chains in (
    ("nat", ("DOCKER", "DOCKYARD", "DOCKYARD-HAIRPIN")),
    ("filter", ("DOCKER", "DOCKYARD", "DOCKER-USER")),
):
    for chain in chains:
        iptables.chain(name=f"chain {table} {chain}", table=table, chain=chain)
iptables.rule(
    name="nat PREROUTING",
    table="nat",
    chain="PREROUTING",
    jump="DOCKYARD",
    extras="-m addrtype --dst-type LOCAL",
)
iptables.rule(
    name="nat OUTPUT",
    table="nat",
    chain="OUTPUT",
    jump="DOCKYARD",
    not_destination="127.0.0.0/8",
    extras="-m addrtype --dst-type LOCAL",
)
iptables.rule(
    name="nat POSTROUTING",
    table="nat",
    chain="POSTROUTING",
    jump="MASQUERADE",
    source=SUBNET,
    not_out_interface=BRIDGE,
)
iptables.rule(
    name="nat POSTROUTING hairpin",
    table="nat",
    chain="POSTROUTING",
    jump="DOCKYARD-HAIRPIN",
    source=SUBNET,
    destination=SUBNET,
    out_interface=BRIDGE,
)
iptables.rule(name="FORWARD to DOCKER-USER", chain="FORWARD", jump="DOCKER-USER")
iptables.rule(name="FORWARD to DOCKYARD", chain="FORWARD", jump="DOCKYARD", out_interface=BRIDGE)
iptables.rule(
    name="FORWARD replies",
    chain="FORWARD",
    jump="ACCEPT",
    out_interface=BRIDGE,
    extras="-m conntrack --ctstate RELATED,ESTABLISHED",
)
iptables.rule(
    name="FORWARD out",
    chain="FORWARD",
    jump="ACCEPT",
    in_interface=BRIDGE,
    not_out_interface=BRIDGE,
)
iptables.rule(
    name="FORWARD between containers",
    chain="FORWARD",
    jump="ACCEPT",
    in_interface=BRIDGE,
    out_interface=BRIDGE,
)

# storage: Docker 1.x's overlay (this kernel has no aufs; btrfs and devicemapper need their
# own disks)
assert host.get_fact(Command, "grep -cw overlay /proc/filesystems || true") != "0", "no overlay"
for sub, mode in (("/overlay", "755"), ("/vfs", "700"), ("/vfs/dir", "700")):
    files.directory(
        name=f"directory {root}{sub}", path=f"{root}{sub}", user="root", group="root", mode=mode
    )
if host.get_fact(File, path=f"{root}/repositories-overlay") is None:
    files.put(
        name="tag store",
        src=StringIO('{"Repositories":{}}'),
        dest=f"{root}/repositories-overlay",
        user="root",
        group="root",
        mode="600",
    )

# container DNS: the host's resolv.conf without loopback resolvers
host_lines = host.get_fact(Command, f"cat {resolv_conf}").splitlines()
wanted = "".join(f"{line}\n" for line in host_lines if not line.startswith("nameserver 127."))
files.put(
    name="resolv.conf",
    src=StringIO(wanted),
    dest=f"{root}/resolv.conf",
    user="root",
    group="root",
    mode="644",
)

# the link graph: Docker's schema and its root entity
if host.get_fact(File, path=f"{root}/linkgraph.db") is None:
    server.shell(name="link graph", commands=[f"sqlite3 {root}/linkgraph.db < {GRAPH_SQL}"])
files.file(
    name="link graph mode", path=f"{root}/linkgraph.db", user="root", group="root", mode="600"
)
