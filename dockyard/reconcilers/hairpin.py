"""hairpin: with `network.userland_proxy: false`, the kernel does what docker-proxy did.

Docker 1.6 reached a published port from the host's own 127.0.0.1, and from a container to its
own published port, through a `docker-proxy` process per port; dockyard runs none. Docker 1.7's
`--userland-proxy=false` did both in the kernel, and so does dockyard with userland_proxy:
false: the iptables reconciler writes the NAT rules, and this one sets what is not a rule:

- `net.ipv4.conf.<bridge>.route_localnet = 1`, so that a packet from 127.0.0.1 DNATed to a
  container may be routed out of the bridge (recorded in the ledger: it is set back to 0 when
  the spec no longer asks for it);
- hairpin mode on each container's port of the bridge, so that a frame DNATed back to the
  container it came from may leave by the port it came in by. A watch sets it on ports that
  appear later (a new port is a netlink link event). Each port dockyard turned on is recorded in
  the ledger and turned off again when the spec goes back to userland_proxy: true, and on `down`.

Which ports are a container's (Docker 1.7 set hairpin mode only on the veth it had just attached
for a container, never on another port): a veth whose peer lives in another network namespace
(the kernel reports IFLA_LINK_NETNSID), and that was not on the bridge when dockyard adopted it.
So a physical NIC, a bond, a VLAN, a veth whose peer is in this namespace (two bridges joined)
are never touched; and on a bridge adopted with `existing: true`, the ports found on it at the
first run (its uplinks, also a veth to a router's namespace) are recorded in the ledger and left
alone for good. A container attached before that first run is taken for an uplink too.

With userland_proxy: true (the default) nothing is set: localhost and hairpin access then need a
proxy process that dockyard does not run.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.reconcilers.base import NETWORKING_DISABLED, Seen
from dockyard.spec import Spec
from dockyard.state import netlink, sysctl
from dockyard.state.host import Host

# A port gone between observing and applying (a container stopped), or no longer on a bridge.
GONE = frozenset({errno.ENODEV, errno.EOPNOTSUPP, errno.EINVAL})

PROXY_NEEDED = (
    "published ports are reached from other hosts only: from this host's 127.0.0.1, from a "
    "container to its own published port and from a container to another's through the host "
    "Docker went through docker-proxy, a process dockyard does not run "
    "(network.userland_proxy: false has the kernel do it)"
)


@dataclass(frozen=True)
class HairpinObserved:
    route_localnet: int | None = None  # None: the bridge does not exist (yet)
    ports: dict[str, bool] = field(default_factory=dict)  # container port -> hairpin mode on
    set_by_dockyard: bool = False  # the ledger: dockyard set route_localnet to 1
    ours: list[str] = field(default_factory=list)  # the ledger: ports dockyard turned on
    left_alone: list[str] = field(default_factory=list)  # the bridge's other ports (uplinks)
    unrecorded: list[str] | None = None  # an adopted bridge's ports, not yet in the ledger


def endpoint(link: netlink.Link | None, found: frozenset[str]) -> bool:
    """Whether a bridge port is a container's: a veth whose peer is in another namespace and
    that was not on the bridge when dockyard adopted it."""
    return (
        link is not None
        and link.kind == "veth"
        and link.peer_netnsid is not None
        and link.name not in found
    )


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

    def __init__(self) -> None:
        self._bound: tuple[Spec, int] | None = None  # the last spec checked, and its count

    def observe(self, spec: Spec, host: Host) -> HairpinObserved:
        bridge = spec.network.bridge
        if bridge.disabled:
            return HairpinObserved()
        mine = host.ledger.owned.get(self.name, {})
        turned_on = {n for n, f in mine.items() if isinstance(f, dict) and f.get("hairpin") == "on"}
        record = host.ledger.facts(self.name, bridge.name)
        found = record.get("ports") if isinstance(record, dict) else None
        adopting = bridge.existing and spec.network.iptables and not isinstance(found, list)
        ports: dict[str, bool] = {}
        others: list[str] = []
        unrecorded: list[str] | None = None
        if wanted(spec) or host.thorough or turned_on or adopting:
            links = {x.index: x for x in netlink.retry(netlink.links)}
            index = next((i for i, x in links.items() if x.name == bridge.name), None)
            on = {p.name: p for p in netlink.retry(netlink.bridge_ports) if p.master == index}
            if adopting and index is not None:
                unrecorded = sorted(on)
            known = frozenset(unrecorded or (found if isinstance(found, list) else ()))
            for name, port in sorted(on.items()):
                if endpoint(links.get(port.index), known):
                    ports[name] = port.hairpin
                else:
                    others.append(name)
        facts = host.ledger.facts(self.name, setting_name(bridge.name))
        return HairpinObserved(
            sysctl.read(host.proc, route_localnet(bridge.name)),
            ports,
            isinstance(facts, dict) and facts.get("value") == 1,
            sorted(turned_on & set(ports)),
            others,
            unrecorded,
        )

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        if spec.network.bridge.disabled:
            return []
        got = seen[HairpinObserved]
        bridge = spec.network.bridge.name
        name = setting_name(bridge)
        changes = self._adopt(bridge, got)
        if not wanted(spec):
            why = "dockyard set it for userland_proxy: false, which the spec no longer asks"
            if got.set_by_dockyard and got.route_localnet == 1:
                changes.append(self._localnet(name, 1, 0, why))
            return changes + self._turn_off(got, why)
        if got.route_localnet != 1:
            why = "userland_proxy: false: 127.0.0.1 DNATed to a container is routed"
            changes.append(self._localnet(name, got.route_localnet, 1, why))
        changes.extend(
            self._port(
                port,
                True,
                f"userland_proxy: false: a container on {bridge} reaches its own published port",
            )
            for port, on in sorted(got.ports.items())
            if not on
        )
        return changes

    def teardown(self, spec: Spec, seen: Seen) -> tuple[list[Change], list[Note]]:
        """`down`: route_localnet goes back to 0 and hairpin mode off where dockyard set them
        (the bridge may stay)."""
        got = seen[HairpinObserved]
        if spec.network.bridge.disabled:
            return [], []
        why = "dockyard set it for userland_proxy: false"
        changes = []
        if got.set_by_dockyard and got.route_localnet == 1:
            changes.append(self._localnet(setting_name(spec.network.bridge.name), 1, 0, why))
        return changes + self._turn_off(got, why), []

    def _adopt(self, bridge: str, got: HairpinObserved) -> list[Change]:
        """Records the ports found on an adopted bridge: its uplinks, never touched."""
        if got.unrecorded is None:
            return []
        return [
            Change(
                self.name,
                "found_ports",
                bridge,
                "create",
                None,
                {"ports": got.unrecorded},
                "the ports on the adopted bridge now (its uplinks): hairpin mode is never "
                "set on them",
                claim=True,
            )
        ]

    def _turn_off(self, got: HairpinObserved, why: str) -> list[Change]:
        return [self._port(port, False, why) for port in got.ours if got.ports.get(port)]

    def _port(self, port: str, on: bool, why: str) -> Change:
        before, after = ("off", "on") if on else ("on", "off")
        return Change(
            self.name,
            "port",
            port,
            "update",
            {"hairpin": before},
            {"hairpin": after},
            why,
            claim=True,
        )

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
        # Asked again with the same spec (the verify pass, every pass of a watch), the count
        # already made: 25 ms at 100,000 ports.
        if self._bound is None or self._bound[0] is not spec:
            self._bound = (spec, loopback_bound(spec))
        bound = self._bound[1]
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
            "ports_left_alone": got.left_alone,
        }

    def apply(self, change: Change, host: Host) -> None:
        after = change.after or {}
        if change.kind == "found_ports":
            return  # a fact for the ledger only
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
            netlink.retry(netlink.set_hairpin, index, after.get("hairpin") == "on")
        except OSError as e:
            if e.errno not in GONE:
                raise


def _index(link: str) -> int | None:
    """The link's index by one lookup (SIOCGIFINDEX), not a dump of every link per port."""
    try:
        return socket.if_nametoindex(link)
    except OSError:
        return None
