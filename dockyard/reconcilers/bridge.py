"""bridge: Docker's bridge (docker0) on a subnet that conflicts with nothing on the host.

An existing bridge is adopted and corrected attribute by attribute, never deleted and
re-created. `address: auto` picks the first of Docker 1.x's candidate ranges that overlaps no
on-link route and holds no nameserver; the choice then sticks (it is kept while the bridge has
it, and recorded in the ledger).
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import NETWORKING_DISABLED, Seen
from dockyard.reconcilers.pidfile import PidFileObserved
from dockyard.spec import Spec
from dockyard.state import netlink, resolv, safepath
from dockyard.state.host import Host

DEFAULT_MTU = 1500


@dataclass(frozen=True)
class BridgeLink:
    name: str
    kind: str | None
    mtu: int
    mac: str | None
    up: bool
    addresses: tuple[str, ...]  # IPv4, CIDR form, in the kernel's order (primary first)
    ports: tuple[str, ...] = ()  # the links attached to it (containers' veths)


@dataclass(frozen=True)
class RouteFact:
    dst: str
    dev: str | None
    gateway: str | None = None
    multipath: bool = False
    kind: str = "unicast"  # or blackhole, unreachable, prohibit: they rule a subnet out too

    @property
    def on_link(self) -> bool:
        return self.gateway is None and not self.multipath


@dataclass(frozen=True)
class BridgeObserved:
    link: BridgeLink | None = None
    routes: tuple[RouteFact, ...] = ()  # main table, unicast, IPv4
    nameservers: tuple[str, ...] = ()
    resolv_conf: str = "/etc/resolv.conf"
    resolv_error: str | None = None
    default_dev: str | None = None
    default_mtu: int | None = None
    recorded_address: str | None = None  # what the ledger says dockyard chose before
    created: bool = False  # the ledger says dockyard created this bridge


def _ports(sysfs: Path, bridge: str) -> tuple[str, ...]:
    """The bridge's ports, as the kernel lists them (sysfs is per network namespace)."""
    try:
        return tuple(sorted(p.name for p in (sysfs / "class/net" / bridge / "brif").iterdir()))
    except OSError:
        return ()


# rtnetlink route types: where packets go, or that they go nowhere (Docker 1.x counted these).
ROUTE_KINDS = {1: "unicast", 6: "blackhole", 7: "unreachable", 8: "prohibit"}


def _mac_waits(spec: Spec, link: BridgeLink) -> bool:
    """Whether the derived MAC waits: the spec names none, and ports are attached whose
    containers know the bridge by the MAC it has (changing it cuts them off from their
    gateway until their neighbour entries expire, about a minute)."""
    wanted = derived_mac(spec.network.bridge.name)
    return spec.network.bridge.mac is None and bool(link.ports) and link.mac != wanted


def derived_mac(name: str) -> str:
    """A locally administered unicast MAC that only depends on the bridge's name."""
    digest = hashlib.sha256(f"dockyard bridge {name}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def conflict(net: ipaddress.IPv4Network, obs: BridgeObserved, bridge: str) -> str | None:
    """Why `net` cannot be the bridge's subnet, or None when nothing on the host is in its way.

    Only on-link routes other than the default count: a VPN's 0.0.0.0/1 + 128.0.0.0/1 via a
    gateway covers everything and must not rule out every candidate (moby learned this late).
    """
    for route in obs.routes:
        dst = ipaddress.IPv4Network(route.dst)
        if dst.prefixlen == 0 or not net.overlaps(dst):
            continue
        if route.kind != "unicast":
            return f"overlaps {route.kind} route {route.dst}"
        if route.on_link and route.dev != bridge:
            return f"overlaps route {route.dst} dev {route.dev}"
    for server in obs.nameservers:
        address = ipaddress.ip_address(server)
        if address.version == 4 and address in net:
            return f"holds nameserver {server} of {obs.resolv_conf}"
    return None


def candidates(spec: Spec, obs: BridgeObserved) -> list[tuple[str, str | None]]:
    name = spec.network.bridge.name
    return [
        (str(pool), conflict(pool.network, obs, name)) for pool in spec.network.bridge.address_pools
    ]


@dataclass(frozen=True)
class Choice:
    address: ipaddress.IPv4Interface | None
    why: str


def recorded_address(facts: object) -> str | None:
    """Pure: the address the ledger says dockyard chose before, as the bridge would list it;
    None for anything else a damaged or hand-edited ledger holds there (the choice is then
    made afresh, as for a bridge never seen)."""
    value = facts.get("address") if isinstance(facts, dict) else None
    if not isinstance(value, str) or "/" not in value:
        return None
    try:
        return ipaddress.IPv4Interface(value).with_prefixlen
    except ValueError:
        return None


def desired_address(spec: Spec, obs: BridgeObserved) -> Choice:
    """The address the bridge should have. Pure, so the firewall can ask for the subnet too."""
    bridge = spec.network.bridge
    if bridge.address != "auto":
        return Choice(bridge.address, "set in the spec")
    have = obs.link.addresses if obs.link else ()
    if obs.recorded_address and obs.recorded_address in have:
        return Choice(ipaddress.IPv4Interface(obs.recorded_address), "kept: chosen earlier")
    if have:
        return Choice(ipaddress.IPv4Interface(have[0]), "kept: the bridge already has it")
    if obs.recorded_address:
        recorded = ipaddress.IPv4Interface(obs.recorded_address)
        if conflict(recorded.network, obs, bridge.name) is None:
            return Choice(recorded, "chosen earlier, still free")
    for pool, reason in candidates(spec, obs):
        if reason is None:
            return Choice(ipaddress.IPv4Interface(pool), "first free candidate")
    return Choice(None, "no candidate is free")


def desired_mtu(spec: Spec, obs: BridgeObserved) -> int:
    mtu = spec.network.bridge.mtu
    if mtu != "auto":
        return mtu
    if obs.default_mtu and obs.default_dev != spec.network.bridge.name:
        return obs.default_mtu
    return DEFAULT_MTU


def bridge_subnet(spec: Spec, obs: BridgeObserved) -> ipaddress.IPv4Network | None:
    """The subnet containers live on: what the firewall rules are written for."""
    if spec.network.bridge.disabled:
        return None
    if spec.network.bridge.existing:
        addresses = obs.link.addresses if obs.link else ()
        return ipaddress.IPv4Interface(addresses[0]).network if addresses else None
    chosen = desired_address(spec, obs).address
    return chosen.network if chosen else None


def _old_address(obs: BridgeObserved, want: str) -> str | None:
    """The address dockyard manages on the bridge: the one it recorded, else the primary one.
    Others, added by hand, are left alone."""
    have = obs.link.addresses if obs.link else ()
    if want in have:
        return want
    if obs.recorded_address in have:
        return obs.recorded_address
    return have[0] if have else None


class Bridge:
    name: ClassVar[str] = "bridge"
    after: ClassVar[tuple[str, ...]] = ("preflight",)
    observation: ClassVar[type] = BridgeObserved

    def __init__(self, force: bool = False) -> None:
        self.force = force  # `down --force`: remove the bridge even while containers use it

    def observe(self, spec: Spec, host: Host) -> BridgeObserved:
        bridge = spec.network.bridge
        if bridge.disabled:
            return BridgeObserved()
        links = netlink.retry(netlink.links)
        by_index = {link.index: link for link in links}
        found = next((link for link in links if link.name == bridge.name), None)
        link = None
        if found is not None:
            addresses = tuple(
                str(a.interface) for a in netlink.retry(netlink.addresses) if a.index == found.index
            )
            link = BridgeLink(
                found.name,
                found.kind,
                found.mtu,
                found.mac,
                found.up,
                addresses,
                _ports(host.sys, found.name),
            )
        routes = []
        default_dev = default_mtu = None
        for r in netlink.retry(netlink.routes):
            kind = ROUTE_KINDS.get(r.type)
            if r.table != netlink.RT_TABLE_MAIN or kind is None:
                continue
            dev = by_index.get(r.oif) if r.oif is not None else None
            name = dev.name if dev else None
            routes.append(RouteFact(str(r.dst), name, r.gateway, r.multipath, kind))
            if r.dst.prefixlen == 0 and default_dev is None and dev is not None:
                default_dev, default_mtu = dev.name, dev.mtu
        resolv_path = Path(spec.dns.host_resolv_conf)
        nameservers: tuple[str, ...] = ()
        resolv_error = None
        try:
            text = safepath.read_file(resolv_path).decode(errors="replace")
            nameservers = resolv.parse(text).nameservers
        except OSError as e:
            resolv_error = e.strerror or str(e)
        except DockyardError as e:
            resolv_error = str(e)
        recorded = host.ledger.facts(self.name, bridge.name)
        return BridgeObserved(
            link=link,
            routes=tuple(routes),
            nameservers=nameservers,
            resolv_conf=str(resolv_path),
            resolv_error=resolv_error,
            default_dev=default_dev,
            default_mtu=default_mtu,
            recorded_address=recorded_address(recorded),
            created=isinstance(recorded, dict) and bool(recorded.get("created")),
        )

    def _wanted(self, spec: Spec, obs: BridgeObserved) -> dict[str, Any] | None:
        chosen = desired_address(spec, obs).address
        if chosen is None:
            return None
        return {
            "address": str(chosen),
            "mtu": desired_mtu(spec, obs),
            "mac": spec.network.bridge.mac or derived_mac(spec.network.bridge.name),
            "state": "up",
        }

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        bridge = spec.network.bridge
        obs = seen[BridgeObserved]
        want = None if bridge.disabled or bridge.existing else self._wanted(spec, obs)
        if want is None:
            return []
        name = bridge.name
        if obs.link is None:
            return [
                Change(
                    self.name, "bridge", name, "create", None, want, "does not exist", claim=True
                )
            ]
        if obs.link.kind != "bridge":
            return []
        have = {
            "address": _old_address(obs, want["address"]),
            "mtu": obs.link.mtu,
            "mac": obs.link.mac,
            "state": "up" if obs.link.up else "down",
        }
        if _mac_waits(spec, obs.link):
            want = {**want, "mac": obs.link.mac}
        drifted = [k for k in want if have[k] != want[k]]
        if not drifted:
            return []
        reasons = {
            "address": "missing its address" if have["address"] is None else "address differs",
            "mtu": "mtu differs",
            "mac": "mac differs",
            "state": "link is down",
        }
        reason = ", ".join(reasons[k] for k in drifted)
        return [Change(self.name, "bridge", name, "update", have, want, reason, claim=True)]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        bridge = spec.network.bridge
        if bridge.disabled:
            return [Note(self.name, "info", NETWORKING_DISABLED)]
        obs = seen[BridgeObserved]
        notes = []
        if obs.resolv_error:
            notes.append(
                Note(
                    self.name,
                    "warning",
                    f"cannot read {obs.resolv_conf} ({obs.resolv_error.lower()}); its "
                    "nameservers were not considered when choosing the bridge's subnet",
                )
            )
        if bridge.existing:
            if obs.link is None:
                return [
                    *notes,
                    Note(
                        self.name,
                        "error",
                        f"{bridge.name} does not exist; network.bridge.existing: true adopts a "
                        "bridge made elsewhere: create it first, or set existing: false",
                    ),
                ]
            if not obs.link.addresses:
                notes.append(
                    Note(self.name, "error", f"{bridge.name} has no IPv4 address to adopt")
                )
            return notes
        if obs.link is not None and obs.link.kind == "bridge" and _mac_waits(spec, obs.link):
            link = obs.link
            shown = ", ".join(link.ports[:5]) + (", ..." if len(link.ports) > 5 else "")
            notes.append(
                Note(
                    self.name,
                    "info",
                    f"{link.name} keeps its MAC {link.mac} while {len(link.ports)} port(s) are "
                    f"attached ({shown}): containers would lose their gateway until they learn "
                    f"it again; dockyard's {derived_mac(link.name)} is set once none is, or now "
                    "with network.bridge.mac",
                )
            )
        if obs.link is not None and obs.link.kind != "bridge":
            what = f"a {obs.link.kind} link" if obs.link.kind else "a network device"
            notes.append(
                Note(
                    self.name,
                    "error",
                    f"{bridge.name} exists but is {what}, not a bridge; it is left alone",
                    drift=True,
                )
            )
        choice = desired_address(spec, obs)
        if choice.address is None:
            notes.append(
                Note(
                    self.name,
                    "error",
                    f"no free subnet for {bridge.name}: every range in "
                    "network.bridge.address_pools overlaps a route or holds a nameserver "
                    "(`reconcile show` says which); set network.bridge.address",
                )
            )
        elif bridge.address != "auto":
            reason = conflict(choice.address.network, obs, bridge.name)
            if reason:
                notes.append(
                    Note(self.name, "warning", f"network.bridge.address {choice.address} {reason}")
                )
        return notes

    def teardown(self, spec: Spec, seen: Seen) -> tuple[list[Change], list[Note]]:
        """`down`: the bridge goes only if dockyard created it (the ledger says so)."""
        obs = seen[BridgeObserved]
        link = obs.link
        if link is None or spec.network.bridge.disabled:
            return [], []
        in_use = None if self.force else self._in_use(link, seen)
        if not obs.created or link.kind != "bridge":
            why = "dockyard did not create it" if not obs.created else "it is not a bridge"
            if in_use:
                # The bridge is never dockyard's to delete, but its firewall (which comes
                # after the bridge) carries the containers' traffic: it stays with them.
                message = (
                    f"{link.name} stays: {why}; {in_use}: its firewall stays too; stop them "
                    "first, or reconcile down --force"
                )
                return [], [Note(self.name, "error", message)]
            return [], [Note(self.name, "info", f"{link.name} stays: {why}")]
        if in_use:
            # An error: the firewall, which comes after the bridge, stays with it.
            message = f"{link.name} stays: {in_use}; stop them first, or reconcile down --force"
            return [], [Note(self.name, "error", message)]
        before = {
            "address": link.addresses[0] if link.addresses else None,
            "mtu": link.mtu,
            "mac": link.mac,
            "state": "up" if link.up else "down",
        }
        return [
            Change(
                self.name,
                "bridge",
                link.name,
                "delete",
                before,
                None,
                "dockyard created it",
                claim=True,
            )
        ], []

    @staticmethod
    def _in_use(link: BridgeLink, seen: Seen) -> str | None:
        """Why removing the bridge would strand containers: ports attached, a live daemon."""
        if link.ports:
            shown = ", ".join(link.ports[:5]) + (", ..." if len(link.ports) > 5 else "")
            return f"{len(link.ports)} port(s) attached ({shown}), containers use it"
        daemon = seen.get(PidFileObserved)
        if daemon is not None and daemon.alive and daemon.pid is not None:
            who = f"pid {daemon.pid}" + (f", {daemon.command}" if daemon.command else "")
            return f"a live daemon ({who}) holds {daemon.path}"
        return None

    def explain(self, spec: Spec, seen: Seen) -> dict[str, Any]:
        """For `show`: which address and MTU the spec leads to, and why."""
        if spec.network.bridge.disabled:
            return {}
        obs = seen[BridgeObserved]
        choice = desired_address(spec, obs)
        return {
            "address": str(choice.address) if choice.address else None,
            "address_reason": choice.why,
            "mtu": desired_mtu(spec, obs),
            "candidates": [
                {"range": pool, "usable": reason is None, **({"reason": reason} if reason else {})}
                for pool, reason in candidates(spec, obs)
            ],
        }

    def apply(self, change: Change, host: Host) -> None:
        name, after = change.name, change.after or {}
        if change.action == "create":
            try:
                netlink.retry(netlink.create_bridge, name)
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
                # Someone made it between observing and now: adopt it as it is.
        index = _index(name)
        if change.action == "delete":
            netlink.retry(netlink.delete_link, index)
            return
        before = change.before or {}
        if after.get("mtu") and after["mtu"] != before.get("mtu"):
            netlink.retry(netlink.set_link, index, mtu=after["mtu"])
        if after.get("mac") and after["mac"] != before.get("mac"):
            netlink.retry(netlink.set_link, index, mac=after["mac"])
        old, new = before.get("address"), after.get("address")
        if old != new:
            # The old address goes first: removing a primary address also removes the
            # secondaries of its subnet, and the new one would be such a secondary.
            if old:
                _address(False, index, old, done_already=errno.EADDRNOTAVAIL)
            if new:
                _address(True, index, new, done_already=errno.EEXIST)
        if after.get("state") and after["state"] != before.get("state"):
            netlink.retry(netlink.set_link, index, up=after["state"] == "up")


def _index(name: str) -> int:
    found = [link.index for link in netlink.retry(netlink.links) if link.name == name]
    if not found:
        raise OSError(errno.ENODEV, f"bridge {name} disappeared", name)
    return int(found[0])


def _address(add: bool, index: int, cidr: str, done_already: int) -> None:
    try:
        netlink.retry(netlink.change_address, add, index, ipaddress.IPv4Interface(cidr))
    except OSError as e:
        if e.errno != done_already:
            raise
