"""ip_forward: the kernel forwards IPv4 packets between the bridge and the world.

Written through /proc/sys, so it acts on the network namespace dockyard runs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.reconcilers.base import NETWORKING_DISABLED, Seen
from dockyard.spec import Spec
from dockyard.state.host import Host

SYSCTL = "net.ipv4.ip_forward"


@dataclass(frozen=True)
class IpForwardObserved:
    value: int


class IpForward:
    name: ClassVar[str] = "ip_forward"
    after: ClassVar[tuple[str, ...]] = ("preflight",)
    observation: ClassVar[type] = IpForwardObserved

    def observe(self, spec: Spec, host: Host) -> IpForwardObserved:
        text = (host.proc / "sys" / SYSCTL.replace(".", "/")).read_text()
        return IpForwardObserved(int(text.strip()))

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        if spec.network.bridge.disabled:
            return []
        want = int(spec.network.ip_forward)
        got = seen[IpForwardObserved].value
        if got == want:
            return []
        reason = (
            "forwarding is off; containers cannot reach out"
            if want
            else "spec turns forwarding off"
        )
        return [
            Change(self.name, "sysctl", SYSCTL, "update", {"value": got}, {"value": want}, reason)
        ]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        if spec.network.bridge.disabled:
            return [Note(self.name, "info", NETWORKING_DISABLED)]
        return []

    def apply(self, change: Change, host: Host) -> None:
        value = (change.after or {})["value"]
        (host.proc / "sys" / SYSCTL.replace(".", "/")).write_text(f"{value}\n")
