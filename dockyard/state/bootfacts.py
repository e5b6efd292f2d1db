"""Facts that hold until the next boot, kept in dockyard's state directory.

The storage probe of overlay mounts a test filesystem and unmounts it (two processes and a
scratch directory) on every observation, for an answer that changes only with the kernel, the
filesystem under the root, or a reboot. Its answer is kept in `<state_dir>/boot-facts.json`
with the key it was found under — the boot (`/proc/sys/kernel/random/boot_id`), the kernel
release, the type and device of the filesystem under the root — and used only while that key
is the same: after a reboot, with another kernel, or with the root on another filesystem, the
probe runs again.

Only successes are kept: a failed probe runs again next time, so a host that was put right is
seen as right at once. A file that cannot be used (damaged, of another format) reads as empty
and is replaced at the next write; anything but a regular file in its place (a symlink, a FIFO)
reads as empty and is left alone: nothing is kept then. It is written atomically (`Tree.write`)
by a run that applies, under its lock (`engine.apply`), never by `plan`, `--dry-run` or
`show`, and never makes the state directory. A write that fails leaves the run as it was: the
probe runs again next time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError
from dockyard.state.safepath import Tree

NAME = "boot-facts.json"
FORMAT_VERSION = 1
LIMIT = 1 << 20

Key = dict[str, str]


def boot_id(proc: Path = Path("/proc")) -> str:
    """This boot's id; empty when it cannot be told."""
    try:
        return (proc / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def monotonic_clock(proc: Path = Path("/proc")) -> str:
    """Whose CLOCK_MONOTONIC this process reads: this boot's, in its time namespace (which may
    shift it). Readings on the same clock compare across processes; empty when unknown."""
    boot = boot_id(proc)
    try:
        namespace = (proc / "self/ns/time").stat().st_ino
    except OSError:
        namespace = 0  # a kernel without time namespaces: one clock for all
    return f"{boot}/{namespace}" if boot else ""


def boot_key(proc: Path, filesystem: str, device: int) -> Key | None:
    """What a fact about the filesystem under the root holds for; None when the boot cannot
    be told (no boot_id), and then nothing is kept."""
    boot = boot_id(proc)
    try:
        release = (proc / "sys/kernel/osrelease").read_text().strip()
    except OSError:
        return None
    if not boot or not release:
        return None
    return {"boot_id": boot, "kernel": release, "filesystem": filesystem, "device": str(device)}


class BootFacts:
    def __init__(self, tree: Tree, known: dict[str, dict[str, Any]] | None = None) -> None:
        self.tree = tree
        self.known: dict[str, dict[str, Any]] = known or {}
        self.dirty = False

    @classmethod
    def load(cls, tree: Tree) -> BootFacts:
        try:
            raw = tree.read(NAME, LIMIT)
            doc = json.loads(raw) if raw is not None else {}
        except (OSError, DockyardError, ValueError, UnicodeDecodeError, RecursionError):
            return cls(tree)
        if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
            return cls(tree)
        facts = doc.get("facts")
        if not isinstance(facts, dict):
            return cls(tree)
        return cls(tree, {k: v for k, v in facts.items() if _valid(v)})

    def get(self, name: str, key: Mapping[str, str]) -> dict[str, Any] | None:
        """The fact `name` found under `key`; None when unknown or found under another key."""
        entry = self.known.get(name)
        if entry is None or entry["key"] != dict(key):
            return None
        value: dict[str, Any] = entry["value"]
        return value

    def put(self, name: str, key: Mapping[str, str], value: dict[str, Any]) -> None:
        entry = {"key": dict(key), "value": value}
        if self.known.get(name) != entry:
            self.known[name] = entry
            self.dirty = True

    def save(self) -> None:
        """Write what was learnt, if anything; never create the state directory for it."""
        if not self.dirty:
            return
        doc = {"format_version": FORMAT_VERSION, "facts": self.known}
        data = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
        try:
            if self.tree.stat("").kind == "directory":
                self.tree.write(NAME, data, 0o600)
        except (OSError, DockyardError):
            return
        self.dirty = False


def _valid(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("key"), dict)
        and all(isinstance(v, str) for v in entry["key"].values())
        and isinstance(entry.get("value"), dict)
    )
