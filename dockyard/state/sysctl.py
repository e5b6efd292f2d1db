"""Kernel settings under /proc/sys, read and written as whole numbers.

A setting is named by its path components (`("net", "ipv4", "conf", "docker0",
"route_localnet")`), never by a dotted name: an interface name may hold a dot. Network settings
belong to the network namespace of the process that opens them, so dockyard run with
`ip netns exec` reads and writes that namespace's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dockyard.errors import DockyardError


def path(proc: Path, parts: Sequence[str]) -> Path:
    return proc.joinpath("sys", *parts)


def read(proc: Path, parts: Sequence[str]) -> int | None:
    """The setting's value, or None when the kernel has no such setting (a module not loaded,
    an interface that does not exist)."""
    try:
        text = path(proc, parts).read_text()
    except FileNotFoundError:
        return None
    try:
        return int(text.split()[0]) if text.strip() else None
    except ValueError:
        raise DockyardError(
            f"{path(proc, parts)} holds {text.strip()[:40]!r}, not a number"
        ) from None


def write(proc: Path, parts: Sequence[str], value: int) -> None:
    with open(path(proc, parts), "w") as f:
        f.write(f"{value}\n")
