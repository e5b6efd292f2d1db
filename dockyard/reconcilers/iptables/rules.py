"""The rules dockyard writes, in iptables-save's own canonical form, so that what is read back
compares equal to what is wanted, text for text.

Ownership is by chain, never by guess. The DOCKER chains belong to the container daemon (Docker
1.x at each start, dockerd today): dockyard creates them when they are missing, so that a
daemon and its rules find them, and never flushes, deletes from or reorders them. What
dockyard publishes lives in its own chains, DOCKYARD in nat and filter, which only dockyard
writes; their rules carry no comment (a comment match takes 256 bytes in the kernel: without
it a table of 100,000 published ports is half the size and loads, saves and changes in about
60% of the time). A rule dockyard puts in a built-in chain carries a comment `dockyard:<hash>`,
the hash of the rest of the rule (as Calico Felix does): ownership is found by reading comments
only, and a rule of ours edited by hand no longer matches its own hash.

Hairpin NAT (Docker 1.5+: `-s C/32 -d C/32 -p P -m P --dport N -j MASQUERADE` per published
port, so that a container reaching its own published port sees the reply come back from the
host) lives in dockyard's nat chain DOCKYARD-HAIRPIN, set-compared like DOCKYARD and reached by
one tagged jump from POSTROUTING for packets between two addresses of the bridge's subnet: at
100,000 published ports, other connections never walk it.

`network.userland_proxy: false` (Docker 1.7): the loopback DNAT in OUTPUT without Docker 1.6's
`! -d 127.0.0.0/8`, DNAT rules without `! -i BRIDGE` (a container reaches a published port
through the host), and `-o BRIDGE -m addrtype --src-type LOCAL -j MASQUERADE`.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from dockyard.spec import Spec
from dockyard.spec.model import ANY_ADDRESS, DEFAULT_PROTO

TAG = "dockyard:"
OWN = "DOCKYARD"
HAIRPIN = "DOCKYARD-HAIRPIN"  # nat: the per-port hairpin MASQUERADE rules
OWN_CHAINS = {"nat": (OWN, HAIRPIN), "filter": (OWN,)}  # dockyard's, every rule in them
DAEMON = "DOCKER"  # the daemon's: created when missing, never flushed, emptied or reordered
USER_CHAIN = "DOCKER-USER"  # the user's: created once, never flushed, never emptied by dockyard
# The chains dockyard makes when they are missing, and those it may remove again (`down`,
# `iptables: false`): never the daemon's.
ENSURED = {"nat": (OWN, HAIRPIN, DAEMON), "filter": (OWN, DAEMON, USER_CHAIN)}
REMOVABLE = {"nat": (OWN, HAIRPIN), "filter": (OWN, USER_CHAIN)}
ISOLATION = "DOCKER-ISOLATION-"  # the daemon's chains that keep its networks apart
BUILTIN = {
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}
TABLES = ("nat", "filter")


def tag_of(body: str) -> str:
    """A 64-bit check of the rule: CRC-32 and Adler-32, both in C. It tells an edit by hand
    from the rule as written; it need not withstand forgery, and 200,000 of them take 0.1 s
    where a cryptographic hash takes 0.5 s."""
    data = body.encode(errors="surrogateescape")  # a rule read back may hold any bytes
    return f"{TAG}{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


class Rule(NamedTuple):
    table: str
    chain: str
    short: str  # the rule without its comment: `-o docker0 -j DOCKYARD`

    @property
    def tag(self) -> str:
        """`dockyard:<hash of table, chain and rule>`; computed only when a rule is written or
        judged, never for the 100,000 that a no-op run finds in place."""
        return tag_of(f"{self.table} {self.chain} {self.short}")

    @property
    def text(self) -> str:
        """The rule as `iptables-save` prints it after `-A CHAIN `, comment included."""
        return with_comment(self.short, self.tag)


def with_comment(short: str, tag: str) -> str:
    at = short.find("-j ")
    return f'{short[:at]}-m comment --comment "{tag}" {short[at:]}'


def rule(table: str, chain: str, body: str, target: str) -> Rule:
    """`body` holds the matches (`-o docker0 -m conntrack ...`), `target` the `-j ...` part."""
    return Rule(table, chain, f"{body} {target}" if body else target)


def block(chain: str, lines: Sequence[str]) -> str:
    """The lines as iptables-save prints them in `chain`, without the last newline."""
    prefix = f"-A {chain} "
    return prefix + ("\n" + prefix).join(lines) if lines else ""


class Own(NamedTuple):
    """One of dockyard's own chains as the comparison takes it (diff.unordered), made while
    the tables are still being read: the chain as iptables-save prints it when it holds the
    wanted lines in their order, and the set of them (None when a line is there twice)."""

    block: str
    members: frozenset[str] | None


class Wanted(NamedTuple):
    builtin: dict[tuple[str, str], list[Rule]]  # per (table, chain), in the order they must stand
    own: dict[tuple[str, str], list[str]]  # dockyard's own chains: rule lines, in any order
    indexed: Mapping[tuple[str, str], Own] = MappingProxyType({})  # `own`, for comparing


def index_own(own: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], Own]:
    out = {}
    for (table, chain), lines in own.items():
        members = frozenset(lines)
        out[table, chain] = Own(
            block(chain, lines), members if len(members) == len(lines) else None
        )
    return out


def wanted(spec: Spec, subnet: ipaddress.IPv4Network) -> Wanted:
    """Docker 1.x's rules for the bridge; the published ports in dockyard's own chains."""
    net = spec.network
    b = net.bridge.name
    proxy = net.userland_proxy
    # Docker 1.6 left 127.0.0.0/8 to docker-proxy; 1.7 without the proxy DNATs it too.
    local = (
        "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL" if proxy else "-m addrtype --dst-type LOCAL"
    )
    rules: dict[tuple[str, str], list[Rule]] = {
        ("nat", "PREROUTING"): [
            rule("nat", "PREROUTING", "-m addrtype --dst-type LOCAL", f"-j {OWN}")
        ],
        ("nat", "OUTPUT"): [rule("nat", "OUTPUT", local, f"-j {OWN}")],
        ("nat", "POSTROUTING"): [],
        ("filter", "FORWARD"): [
            rule("filter", "FORWARD", "", f"-j {USER_CHAIN}"),
            rule("filter", "FORWARD", f"-o {b}", f"-j {OWN}"),
            rule(
                "filter",
                "FORWARD",
                f"-o {b} -m conntrack --ctstate RELATED,ESTABLISHED",
                "-j ACCEPT",
            ),
            rule("filter", "FORWARD", f"-i {b} ! -o {b}", "-j ACCEPT"),
            rule("filter", "FORWARD", f"-i {b} -o {b}", "-j ACCEPT" if net.icc else "-j DROP"),
        ],
    }
    postrouting = rules[("nat", "POSTROUTING")]
    if net.ip_masq:
        postrouting.append(rule("nat", "POSTROUTING", f"-s {subnet} ! -o {b}", "-j MASQUERADE"))
    if not proxy:
        postrouting.append(
            rule("nat", "POSTROUTING", f"-o {b} -m addrtype --src-type LOCAL", "-j MASQUERADE")
        )
    postrouting.append(
        rule("nat", "POSTROUTING", f"-s {subnet} -d {subnet} -o {b}", f"-j {HAIRPIN}")
    )
    bind = str(net.default_bind_ip)
    # Without the proxy a container reaches published ports through the host: no `! -i B`.
    from_outside = f"! -i {b} " if proxy else ""
    # Written for speed: this loop runs once per published port, 100,000 times at scale. What
    # is the same for many ports (the start of a DNAT rule, the ACCEPT and MASQUERADE rules
    # around a container's address and port) is written once, and formatted with %.
    dnat: list[str] = []
    starts: dict[tuple[str, str], str] = {}  # (host_ip, proto) -> the DNAT rule up to its port
    # Two host ports may lead to one container port: one ACCEPT and one hairpin MASQUERADE.
    targets: dict[tuple[str, str, int], None] = {}
    for port in net.published_ports:
        p = port.get("proto", DEFAULT_PROTO)
        # A port without host_ip is published on default_bind_ip, as Docker's --ip did.
        host_ip = port.get("host_ip", bind)
        start = starts.get((host_ip, p))
        if start is None:
            dst = "" if host_ip == ANY_ADDRESS else f"-d {host_ip}/32 "
            start = starts[host_ip, p] = f"{dst}{from_outside}-p {p} -m {p} --dport "
        to_ip, to_port = port["container_ip"], port["container_port"]
        dnat.append(f"{start}{port['host_port']} -j DNAT --to-destination {to_ip}:{to_port}")
        targets[to_ip, p, to_port] = None
    protos = {p for _, p in starts}
    b = b.replace("%", "%%")  # a bridge may be called `br%1`
    accepting = {p: f"-d %s/32 ! -i {b} -o {b} -p {p} -m {p} --dport %d -j ACCEPT" for p in protos}
    masking = {p: f"-s %s/32 -d %s/32 -p {p} -m {p} --dport %d -j MASQUERADE" for p in protos}
    accept = [accepting[p] % (to_ip, to_port) for to_ip, p, to_port in targets]
    hairpin = [masking[p] % (to_ip, to_ip, to_port) for to_ip, p, to_port in targets]
    own = {("nat", OWN): dnat, ("nat", HAIRPIN): hairpin, ("filter", OWN): accept}
    return Wanted(rules, own, index_own(own))
