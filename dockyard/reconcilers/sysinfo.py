"""sysinfo: what the kernel offers containers, as Docker's daemon checked at start.
Observe-only; the plan repeats Docker's warnings once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.reconcilers.base import Seen
from dockyard.spec import Spec
from dockyard.state.host import Host


@dataclass(frozen=True)
class SysinfoObserved:
    cgroup: str  # "v1", "v2", "kernel" (read from /proc/cgroups: no hierarchy mounted here)
    memory_limit: bool
    swap_limit: bool | None  # None: no memory hierarchy mounted to look in (Docker said nothing)
    ipv4_forwarding: bool | None
    apparmor: bool


def _enabled(proc: Path, controller: str) -> bool:
    try:
        lines = (proc / "cgroups").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[0] == controller and line.split()[-1] == "1" for line in lines[1:])


class Sysinfo:
    name: ClassVar[str] = "sysinfo"
    after: ClassVar[tuple[str, ...]] = ("preflight",)
    observation: ClassVar[type] = SysinfoObserved

    def observe(self, spec: Spec, host: Host) -> SysinfoObserved:
        cgroup = host.sys / "fs" / "cgroup"
        memory = cgroup / "memory"
        if (cgroup / "cgroup.controllers").exists():
            controllers = (cgroup / "cgroup.controllers").read_text().split()
            kind = "v2"
            has_memory = "memory" in controllers
            has_swap: bool | None = has_memory and any(cgroup.glob("*/memory.swap.max"))
        elif memory.is_dir():
            kind = "v1"
            has_memory = (memory / "memory.limit_in_bytes").exists() and (
                memory / "memory.soft_limit_in_bytes"
            ).exists()
            has_swap = (memory / "memory.memsw.limit_in_bytes").exists()
        else:
            # `ip netns exec` mounts a fresh /sys without the cgroup hierarchies: ask the kernel.
            kind, has_memory, has_swap = "kernel", _enabled(host.proc, "memory"), None
        try:
            forwarding: bool | None = (
                host.proc / "sys/net/ipv4/ip_forward"
            ).read_text().strip() == "1"
        except OSError:
            forwarding = None
        return SysinfoObserved(
            kind, has_memory, has_swap, forwarding, (host.sys / "kernel/security/apparmor").exists()
        )

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        return []

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        got = seen[SysinfoObserved]
        notes = []
        # Docker 1.6's pkg/sysinfo, word for word: with the memory hierarchy mounted it checked
        # the limit files and the swap file apart, so a host without either gets both warnings.
        if not got.memory_limit:
            notes.append("Your kernel does not support cgroup memory limit.")
        if got.swap_limit is False:
            notes.append("Your kernel does not support cgroup swap limit.")
        stays_off = spec.network.bridge.disabled or spec.network.ip_forward is not True
        if got.ipv4_forwarding is False and stays_off:
            notes.append("IPv4 forwarding is disabled: containers cannot reach the network")
        return [Note(self.name, "warning", message) for message in notes]

    def apply(self, change: Change, host: Host) -> None:
        raise AssertionError("sysinfo makes no changes")
