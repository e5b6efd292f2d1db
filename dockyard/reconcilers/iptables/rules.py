"""The rules Docker 1.x installs, as dockyard writes them: in iptables-save's own canonical
form, so that what is read back compares equal to what is wanted, text for text.

Every rule of dockyard's carries a comment `dockyard:<hash>`, the hash of the rest of the rule
(Calico Felix does the same): ownership is found by reading comments only, and a rule of ours
edited by hand no longer matches its own hash.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

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
    return TAG + hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    body: str  # the rule without its comment and target: `-o docker0 -m conntrack ...`
    target: str  # `-j ACCEPT`, `-j DNAT --to-destination 172.17.0.2:80`

    @property
    def tag(self) -> str:
        return tag_of(f"{self.table} {self.chain} {self.short}")

    @property
    def text(self) -> str:
        """The rule as `iptables-save` prints it after `-A CHAIN `."""
        body = f"{self.body} " if self.body else ""
        return f'{body}-m comment --comment "{self.tag}" {self.target}'

    @property
    def short(self) -> str:
        body = f"{self.body} " if self.body else ""
        return f"{body}{self.target}"


def _host(address: ipaddress.IPv4Address) -> str:
    return f"{address}/32"


def wanted(spec: Spec, subnet: ipaddress.IPv4Network) -> dict[tuple[str, str], list[Rule]]:
    """Docker 1.x's rules for the bridge, per (table, chain), in the order they must stand."""
    net = spec.network
    b = net.bridge.name
    rules: dict[tuple[str, str], list[Rule]] = {
        ("nat", "PREROUTING"): [
            Rule("nat", "PREROUTING", "-m addrtype --dst-type LOCAL", "-j DOCKER")
        ],
        ("nat", "OUTPUT"): [
            Rule("nat", "OUTPUT", "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL", "-j DOCKER")
        ],
        ("nat", "POSTROUTING"): [],
        ("nat", "DOCKER"): [],
        ("filter", "FORWARD"): [
            Rule("filter", "FORWARD", "", f"-j {USER_CHAIN}"),
            Rule("filter", "FORWARD", f"-o {b}", "-j DOCKER"),
            Rule(
                "filter",
                "FORWARD",
                f"-o {b} -m conntrack --ctstate RELATED,ESTABLISHED",
                "-j ACCEPT",
            ),
            Rule("filter", "FORWARD", f"-i {b} ! -o {b}", "-j ACCEPT"),
            Rule("filter", "FORWARD", f"-i {b} -o {b}", "-j ACCEPT" if net.icc else "-j DROP"),
        ],
        ("filter", "DOCKER"): [],
    }
    if net.ip_masq:
        rules[("nat", "POSTROUTING")].append(
            Rule("nat", "POSTROUTING", f"-s {subnet} ! -o {b}", "-j MASQUERADE")
        )
    accepted: set[str] = set()
    for port in net.published_ports:
        dst = "" if port.host_ip == ipaddress.IPv4Address(0) else f"-d {_host(port.host_ip)} "
        proto = f"-p {port.proto} -m {port.proto}"
        rules[("nat", "DOCKER")].append(
            Rule(
                "nat",
                "DOCKER",
                f"{dst}! -i {b} {proto} --dport {port.host_port}",
                f"-j DNAT --to-destination {port.container_ip}:{port.container_port}",
            )
        )
        accept = (
            f"-d {_host(port.container_ip)} ! -i {b} -o {b} {proto} --dport {port.container_port}"
        )
        # Two host ports may lead to the same container port: one ACCEPT serves both.
        if accept not in accepted:
            accepted.add(accept)
            rules[("filter", "DOCKER")].append(Rule("filter", "DOCKER", accept, "-j ACCEPT"))
    return rules
