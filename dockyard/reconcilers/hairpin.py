"""hairpin: with `network.userland_proxy: false`, the kernel does what docker-proxy did.

Docker 1.6 reached a published port from the host's own 127.0.0.1, and from a container to its
own published port, through a `docker-proxy` process per port; dockyard runs none. Docker 1.7's
`--userland-proxy=false` did both in the kernel, and so does dockyard with userland_proxy:
false: the iptables reconciler writes the NAT rules, and this one sets what is not a rule:

- `net.ipv4.conf.<bridge>.route_localnet = 1`, so that a packet from 127.0.0.1 DNATed to a
  container may be routed out of the bridge (recorded in the ledger: it is set back to 0 when
  the spec no longer asks for it);
- hairpin mode on every port of the bridge (each container's veth), so that a frame DNATed back
  to the container it came from may leave by the port it came in by. A watch sets it on ports
  that appear later (a new port is a netlink link event).

With userland_proxy: true (the default) nothing is set: localhost and hairpin access then need a
proxy process that dockyard does not run.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.reconcilers.base import NETWORKING_DISABLED, Seen
from dockyard.reconcilers.bridge import _retry
from dockyard.spec import Spec
from dockyard.state import netlink, sysctl
from dockyard.state.host import Host

# A port gone between observing and applying (a container stopped), or no longer on a bridge.
GONE = frozenset({errno.ENODEV, errno.EOPNOTSUPP, errno.EINVAL})

PROXY_NEEDED = (
    "published ports are reached from other hosts only: from this host's 127.0.0.1 and from a "
    "container to its own published port Docker went through docker-proxy, a process dockyard "
    "does not run (network.userland_proxy: false has the kernel do it)"
)


@dataclass(frozen=True)
class HairpinObserved:
    route_localnet: int | None = None  # None: the bridge does not exist (yet)
    ports: dict[str, bool] = field(default_factory=dict)  # port -> hairpin mode on
    set_by_dockyard: bool = False  # the ledger: dockyard set route_localnet to 1


def route_localnet(bridge: str) -> tuple[str, ...]:
    return ("net", "ipv4", "conf", bridge, "route_localnet")


def setting_name(bridge: str) -> str:
    return f"net.ipv4.conf.{bridge}.route_localnet"


def wanted(spec: Spec) -> bool:
    """Whether the kernel's hairpin NAT stands in for the proxy."""
    net = spec.network
    return not net.bridge.disabled and net.iptables and not net.userland_proxy


def loopback_bound(spec: Spec) -> int:
    """How many published ports listen on 127.0.0.0/8 only."""
    bind = str(spec.network.default_bind_ip)
    return sum(1 for p in spec.network.published_ports if p.get("host_ip", bind).startswith("127."))


class Hairpin:
    name: ClassVar[str] = "hairpin"
    after: ClassVar[tuple[str, ...]] = ("bridge",)
    observation: ClassVar[type] = HairpinObserved

    def observe(self, spec: Spec, host: Host) -> HairpinObserved:
        bridge = spec.network.bridge
        if bridge.disabled:
            return HairpinObserved()
        ports: dict[str, bool] = {}
        if wanted(spec) or host.thorough:
            index = _index(bridge.name)
            ports = {p.name: p.hairpin for p in _retry(netlink.bridge_ports) if p.master == index}
        facts = host.ledger.facts(self.name, setting_name(bridge.name))
        return HairpinObserved(
            sysctl.read(host.proc, route_localnet(bridge.name)),
            ports,
            isinstance(facts, dict) and facts.get("value") == 1,
        )

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        if spec.network.bridge.disabled:
            return []
        got = seen[HairpinObserved]
        bridge = spec.network.bridge.name
        name = setting_name(bridge)
        if not wanted(spec):
            if not (got.set_by_dockyard and got.route_localnet == 1):
                return []
            why = "dockyard set it for userland_proxy: false, which the spec no longer asks"
            return [self._localnet(name, 1, 0, why)]
        changes = []
        if got.route_localnet != 1:
            why = "userland_proxy: false: 127.0.0.1 DNATed to a container is routed"
            changes.append(self._localnet(name, got.route_localnet, 1, why))
        changes.extend(
            Change(
                self.name,
                "port",
                port,
                "update",
                {"hairpin": "off"},
                {"hairpin": "on"},
                f"userland_proxy: false: a container on {bridge} reaches its own published port",
            )
            for port, on in sorted(got.ports.items())
            if not on
        )
        return changes

    def teardown(self, spec: Spec, seen: Seen) -> tuple[list[Change], list[Note]]:
        """`down`: route_localnet goes back to 0 if dockyard set it (the bridge may stay)."""
        got = seen[HairpinObserved]
        if spec.network.bridge.disabled or not (got.set_by_dockyard and got.route_localnet == 1):
            return [], []
        name = setting_name(spec.network.bridge.name)
        return [self._localnet(name, 1, 0, "dockyard set it for userland_proxy: false")], []

    def _localnet(self, name: str, before: int | None, after: int, why: str) -> Change:
        return Change(
            self.name,
            "sysctl",
            name,
            "update",
            {"value": before},
            {"value": after},
            why,
            claim=True,
        )

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        net = spec.network
        if net.bridge.disabled:
            return [Note(self.name, "info", NETWORKING_DISABLED)]
        if not net.userland_proxy or not net.iptables or not net.published_ports:
            return []
        bound = loopback_bound(spec)
        if not bound:
            return []
        return [
            Note(
                self.name,
                "warning",
                f"{bound} published port(s) listen on 127.0.0.0/8 only and cannot be reached: "
                "Docker reached them through docker-proxy, a process dockyard does not run; set "
                "network.userland_proxy: false to have the kernel do it",
            )
        ]

    def explain(self, spec: Spec, seen: Seen) -> dict[str, object]:
        got = seen[HairpinObserved]
        net = spec.network
        if net.bridge.disabled:
            return {}
        if wanted(spec):
            access = (
                "from other hosts, from this host's 127.0.0.1 and from a container to its own "
                "published port (the kernel's hairpin NAT; no proxy process)"
            )
        elif net.iptables:
            access = PROXY_NEEDED
        else:
            access = "network.iptables is false: dockyard publishes nothing"
        ports = {port: "on" if on else "off" for port, on in sorted(got.ports.items())}
        return {
            "userland_proxy": net.userland_proxy,
            "published_ports_reached": access,
            "route_localnet": got.route_localnet,
            "hairpin_ports": ports,
        }

    def apply(self, change: Change, host: Host) -> None:
        after = change.after or {}
        if change.kind == "sysctl":
            value = after.get("value")
            if value is not None:  # None: an undo on a bridge that did not exist before
                bridge = change.name.removeprefix("net.ipv4.conf.").rsplit(".", 1)[0]
                sysctl.write(host.proc, route_localnet(bridge), value)
            return
        index = _index(change.name)
        if index is None:
            return  # the container went away: its port with it
        try:
            _retry(netlink.set_hairpin, index, after.get("hairpin") == "on")
        except OSError as e:
            if e.errno not in GONE:
                raise


def _index(link: str) -> int | None:
    return next((x.index for x in _retry(netlink.links) if x.name == link), None)
