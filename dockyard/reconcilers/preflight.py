"""preflight: Docker's checks that the host can run containers at all. Observes, never changes."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.reconcilers.base import Seen
from dockyard.spec import Spec
from dockyard.spec.types import UNAME_TO_ARCH
from dockyard.state.host import Host


@dataclass(frozen=True)
class PreflightObserved:
    os: str
    euid: int
    kernel: str
    machine: str

    @property
    def arch(self) -> str:
        return UNAME_TO_ARCH.get(self.machine, self.machine)


def kernel_tuple(release: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a release string such as `6.1.0-18-amd64` or `3.8`."""
    numbers = [int(n) for n in re.findall(r"\d+", release.split("-")[0])[:3]]
    major, minor, patch = (*numbers, 0, 0, 0)[:3]
    return (major, minor, patch)


class Preflight:
    name: ClassVar[str] = "preflight"
    after: ClassVar[tuple[str, ...]] = ()
    observation: ClassVar[type] = PreflightObserved

    def observe(self, spec: Spec, host: Host) -> PreflightObserved:
        return PreflightObserved(
            os=platform.system().lower(),
            euid=os.geteuid(),
            kernel=platform.release(),
            machine=platform.machine(),
        )

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        return []

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        want, got = spec.preflight, seen[PreflightObserved]
        failed: list[str] = []
        if got.os != want.os:
            failed.append(f"this host runs {got.os}; the spec needs {want.os}")
        if want.require_root and got.euid != 0:
            failed.append(
                f"must run as root (effective uid is {got.euid}); "
                "run it with sudo, or set preflight.require_root: false"
            )
        if kernel_tuple(got.kernel) < kernel_tuple(want.min_kernel):
            failed.append(
                f"kernel {got.kernel} is older than preflight.min_kernel {want.min_kernel}"
            )
        if got.arch not in want.arch:
            machine = f" ({got.machine})" if got.machine != got.arch else ""
            failed.append(
                f"architecture {got.arch}{machine} is not in preflight.arch "
                f"[{', '.join(want.arch)}]"
            )
        return [Note(self.name, "error", message) for message in failed]

    def apply(self, change: Change, host: Host) -> None:
        raise AssertionError("preflight makes no changes")
