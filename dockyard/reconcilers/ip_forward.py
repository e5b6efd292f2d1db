"""ip_forward: the kernel forwards IPv4 packets between the bridge and the world.

As Docker's --ip-forward: `true` turns forwarding on, `false` leaves it as it is (a host that
forwards for other reasons keeps doing so), and `disable`, dockyard's own, turns it off.
Written through /proc/sys, so it acts on the network namespace dockyard runs in.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.reconcilers.base import NETWORKING_DISABLED, Seen
from dockyard.spec import Spec
from dockyard.spec.types import IP_FORWARD_DISABLE
from dockyard.state import sysctl
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
        value = sysctl.read(host.proc, SYSCTL.split("."))
        if value is None:
            raise OSError(errno.ENOENT, "no IPv4 forwarding setting", SYSCTL)
        return IpForwardObserved(value)

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        want = wanted(spec)
        got = seen[IpForwardObserved].value
        if want is None or got == want:
            return []
        reason = (
            "forwarding is off; containers cannot reach out"
            if want
            else "network.ip_forward: disable turns forwarding off"
        )
        return [
            Change(self.name, "sysctl", SYSCTL, "update", {"value": got}, {"value": want}, reason)
        ]

    def explain(self, spec: Spec, seen: Seen) -> dict[str, object]:
        want = wanted(spec)
        return {
            "value": seen[IpForwardObserved].value,
            "wanted": "left as it is" if want is None else want,
        }

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        if spec.network.bridge.disabled:
            return [Note(self.name, "info", NETWORKING_DISABLED)]
        return []

    def apply(self, change: Change, host: Host) -> None:
        sysctl.write(host.proc, SYSCTL.split("."), (change.after or {})["value"])


def wanted(spec: Spec) -> int | None:
    """The value the spec asks for, or None when it leaves forwarding as it is."""
    setting = spec.network.ip_forward
    if spec.network.bridge.disabled or setting is False:
        return None
    return 0 if setting == IP_FORWARD_DISABLE else 1
