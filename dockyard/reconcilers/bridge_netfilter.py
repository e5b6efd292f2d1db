"""bridge_netfilter: frames between two containers pass through iptables when the spec needs it.

Two containers on one bridge talk over the bridge: their frames are bridged, not routed, and
reach iptables' FORWARD chain only when br_netfilter's `net.bridge.bridge-nf-call-iptables` is
1 (a setting of each network namespace). At 0, icc: false's `-i docker0 -o docker0 -j DROP`
never sees a packet; so does the un-NAT of a reply between two containers that userland_proxy:
false's hairpin NAT relies on. Docker 1.6 never looked (icc: false then isolated nothing where it
was 0); Docker 1.8 to 26 set it whenever forwarding was on; moby 27 only where icc: false (later
also userland-proxy: false) needs it, and so does dockyard: it sets it to 1 (and
`bridge-nf-call-ip6tables` with network.ipv6) when icc: false or userland_proxy: false asks for
it, loads br_netfilter with modprobe when the setting does not exist, and otherwise fails with
Docker's words. Other hosts' bridges in the namespace are filtered too from then on, which is why
it is left alone when nothing in the spec needs it, and why a value dockyard changed is recorded
in the ledger with the value it replaced (`was`) and put back when the spec stops needing it and
on `down`. A 1 that dockyard found (or that loading br_netfilter gave, the kernel's default) is
not dockyard's and stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import NETWORKING_DISABLED, Seen
from dockyard.spec import Spec
from dockyard.state import kmod, sysctl
from dockyard.state.host import Host

IPV4 = "net.bridge.bridge-nf-call-iptables"
IPV6 = "net.bridge.bridge-nf-call-ip6tables"
MODULE = "br_netfilter"

# Docker's words (libnetwork's bridge driver, from Docker 1.8), and moby's later ones for the
# case Docker 1.8 did not have: no userland proxy.
ICC_REFUSED = "cannot restrict inter-container communication"
PROXY_REFUSED = "cannot restrict inter-container communication or run without the userland proxy"
LOAD_IT = "please ensure that br_netfilter kernel module is loaded"


@dataclass(frozen=True)
class BridgeNetfilterObserved:
    values: dict[str, int | None] = field(default_factory=dict)  # None: no such setting
    modprobe: str | None = None  # the program that could load br_netfilter
    set_by_dockyard: dict[str, int] = field(default_factory=dict)  # the ledger: setting -> was


def needed(spec: Spec) -> list[str]:
    """The settings that must be 1 for what the spec asks, in the order they are set."""
    net = spec.network
    if net.bridge.disabled or not net.iptables or (net.icc and net.userland_proxy):
        return []
    return [IPV4, IPV6] if net.ipv6 else [IPV4]


def refusal(spec: Spec) -> str:
    return ICC_REFUSED if not spec.network.icc else PROXY_REFUSED


class BridgeNetfilter:
    name: ClassVar[str] = "bridge_netfilter"
    after: ClassVar[tuple[str, ...]] = ("bridge",)
    observation: ClassVar[type] = BridgeNetfilterObserved

    def observe(self, spec: Spec, host: Host) -> BridgeNetfilterObserved:
        values = {s: sysctl.read(host.proc, s.split(".")) for s in (IPV4, IPV6)}
        return BridgeNetfilterObserved(values, kmod.modprobe(host.environ), _set_by_dockyard(host))

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        want = needed(spec)
        got = seen[BridgeNetfilterObserved]
        why = "icc: false" if not spec.network.icc else "userland_proxy: false"
        if any(got.values.get(s) is None for s in want):
            if got.modprobe is None:
                return []  # check() says why nothing can be done
            reason = f"{why} needs bridged traffic filtered; {IPV4} does not exist"
            return [
                Change(
                    self.name,
                    "module",
                    MODULE,
                    "create",
                    None,
                    {"loaded": True, "else": refusal(spec)},
                    reason,
                    reversible=False,
                )
            ]
        changes = [
            Change(
                self.name,
                "sysctl",
                setting,
                "update",
                {"value": got.values[setting], "was": got.values[setting]},
                {"value": 1, "was": got.values[setting]},
                f"{why}: frames between containers bypass iptables",
                claim=True,
            )
            for setting in want
            if got.values[setting] != 1
        ]
        return changes + self._put_back(got, want, "the spec no longer needs it")

    def teardown(self, spec: Spec, seen: Seen) -> tuple[list[Change], list[Note]]:
        """`down`: every setting dockyard changed goes back to the value it replaced."""
        return self._put_back(seen[BridgeNetfilterObserved], [], "down"), []

    def _put_back(self, got: BridgeNetfilterObserved, want: list[str], why: str) -> list[Change]:
        """The settings dockyard set to 1, still 1, and no longer wanted: back to `was`."""
        return [
            Change(
                self.name,
                "sysctl",
                setting,
                "update",
                {"value": 1, "was": was},
                {"value": was, "was": was},
                f"dockyard set it to 1 (it was {was}); {why}",
                claim=True,
            )
            for setting, was in sorted(got.set_by_dockyard.items())
            if setting not in want and got.values.get(setting) == 1
        ]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        if spec.network.bridge.disabled:
            return [Note(self.name, "info", NETWORKING_DISABLED)]
        got = seen[BridgeNetfilterObserved]
        missing = [s for s in needed(spec) if got.values.get(s) is None]
        if not missing or got.modprobe is not None:
            return []
        return [
            Note(
                self.name,
                "error",
                f"{refusal(spec)}: {LOAD_IT} (/proc/sys/{missing[0].replace('.', '/')} does "
                "not exist in this network namespace, and there is no modprobe to load it)",
            )
        ]

    def explain(self, spec: Spec, seen: Seen) -> dict[str, object]:
        got = seen[BridgeNetfilterObserved]
        return {
            "settings": got.values,
            "wanted": dict.fromkeys(needed(spec), 1) or "left as they are: nothing needs them",
            "set_by_dockyard_from": got.set_by_dockyard,
        }

    def apply(self, change: Change, host: Host) -> None:
        if change.kind == "module":
            failed = kmod.load(host.environ, MODULE)
            if failed:
                words = (change.after or {})["else"]
                raise DockyardError(f"{words}: {LOAD_IT} ({failed})")
            return
        value = (change.after or {})["value"]
        if value is None:
            return  # an undo to a setting that did not exist
        sysctl.write(host.proc, change.name.split("."), value)


def _set_by_dockyard(host: Host) -> dict[str, int]:
    """The settings the ledger says dockyard set to 1, with the value each replaced."""
    out = {}
    for setting in (IPV4, IPV6):
        facts = host.ledger.facts(BridgeNetfilter.name, setting)
        if not isinstance(facts, dict) or facts.get("value") != 1:
            continue
        was = facts.get("was")
        if isinstance(was, int) and not isinstance(was, bool):
            out[setting] = was
    return out
