"""The rules Docker 1.x installs, as dockyard writes them: in iptables-save's own canonical
form, so that what is read back compares equal to what is wanted, text for text.

Every rule of dockyard's carries a comment `dockyard:<hash>`, the hash of the rest of the rule
(Calico Felix does the same): ownership is found by reading comments only, and a rule of ours
edited by hand no longer matches its own hash.
"""

from __future__ import annotations

import ipaddress
import zlib
from typing import NamedTuple

from dockyard.spec import Spec

TAG = "dockyard:"
OUR_CHAINS = {"nat": ("DOCKER",), "filter": ("DOCKER", "DOCKER-USER")}
USER_CHAIN = "DOCKER-USER"  # the user's: created once, never flushed, never emptied by dockyard
BUILTIN = {
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}
TABLES = ("nat", "filter")


def tag_of(body: str) -> str:
    """A 64-bit check of the rule: CRC-32 and Adler-32, both in C. It tells an edit by hand
    from the rule as written; it need not withstand forgery, and 200,000 of them take 0.1 s
    where a cryptographic hash takes 0.5 s."""
    data = body.encode()
    return f"{TAG}{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


class Rule(NamedTuple):
    table: str
    chain: str
    short: str  # the rule without its comment: `-o docker0 -j DOCKER`

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


def wanted(spec: Spec, subnet: ipaddress.IPv4Network) -> dict[tuple[str, str], list[Rule]]:
    """Docker 1.x's rules for the bridge, per (table, chain), in the order they must stand."""
    net = spec.network
    b = net.bridge.name
    rules: dict[tuple[str, str], list[Rule]] = {
        ("nat", "PREROUTING"): [
            rule("nat", "PREROUTING", "-m addrtype --dst-type LOCAL", "-j DOCKER")
        ],
        ("nat", "OUTPUT"): [
            rule("nat", "OUTPUT", "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL", "-j DOCKER")
        ],
        ("nat", "POSTROUTING"): [],
        ("nat", "DOCKER"): [],
        ("filter", "FORWARD"): [
            rule("filter", "FORWARD", "", f"-j {USER_CHAIN}"),
            rule("filter", "FORWARD", f"-o {b}", "-j DOCKER"),
            rule(
                "filter",
                "FORWARD",
                f"-o {b} -m conntrack --ctstate RELATED,ESTABLISHED",
                "-j ACCEPT",
            ),
            rule("filter", "FORWARD", f"-i {b} ! -o {b}", "-j ACCEPT"),
            rule("filter", "FORWARD", f"-i {b} -o {b}", "-j ACCEPT" if net.icc else "-j DROP"),
        ],
        ("filter", "DOCKER"): [],
    }
    if net.ip_masq:
        rules[("nat", "POSTROUTING")].append(
            rule("nat", "POSTROUTING", f"-s {subnet} ! -o {b}", "-j MASQUERADE")
        )
    # Written for speed: this loop runs once per published port, 100,000 times at scale.
    dnat, accept = rules[("nat", "DOCKER")], rules[("filter", "DOCKER")]
    accepted: set[str] = set()
    for port in net.published_ports:
        proto = f"-p {port.proto} -m {port.proto}"
        dst = "" if port.host_ip == "0.0.0.0" else f"-d {port.host_ip}/32 "
        dnat.append(
            Rule(
                "nat",
                "DOCKER",
                f"{dst}! -i {b} {proto} --dport {port.host_port} "
                f"-j DNAT --to-destination {port.container_ip}:{port.container_port}",
            )
        )
        allow = (
            f"-d {port.container_ip}/32 ! -i {b} -o {b} {proto} "
            f"--dport {port.container_port} -j ACCEPT"
        )
        # Two host ports may lead to the same container port: one ACCEPT serves both.
        if allow not in accepted:
            accepted.add(allow)
            accept.append(Rule("filter", "DOCKER", allow))
    return rules
