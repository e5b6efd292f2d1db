"""containers: the containers found under `<root>/containers`, loaded as Docker's daemon
loaded them at start. Observe-only: a broken container is listed with the reason and left
alone; none is ever removed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.migration import MigrationObserved
from dockyard.reconcilers.storage import StorageObserved, chosen
from dockyard.spec import Spec
from dockyard.state.host import Host

LAYER_HOME = {
    "aufs": "aufs/diff",
    "vfs": "vfs/dir",
    "overlay2": "overlay2",
    "overlay": "overlay",
    "btrfs": "btrfs/subvolumes",
    "devicemapper": "devicemapper/mnt",
}


@dataclass(frozen=True)
class ContainerEntry:
    id: str
    name: str | None = None
    image: str | None = None
    problem: str | None = None  # config.json that cannot be read
    layers: tuple[str, ...] = ()  # drivers whose layer directory for this container exists
    legacy_rw: bool = False  # still in the pre-driver layout, waiting for migration


@dataclass(frozen=True)
class ContainersObserved:
    entries: tuple[ContainerEntry, ...] = ()


def _entry(path: Path, root: Path) -> ContainerEntry:
    layers = tuple(d for d, home in LAYER_HOME.items() if (root / home / path.name).is_dir())
    legacy = (path / "rw").is_dir()
    try:
        config = json.loads((path / "config.json").read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        return ContainerEntry(
            path.name, problem=f"config.json: {e}", layers=layers, legacy_rw=legacy
        )
    name = config.get("Name")
    return ContainerEntry(
        path.name,
        name=str(name).lstrip("/") if name else None,
        image=config.get("Image"),
        layers=layers,
        legacy_rw=legacy,
    )


def problems(spec: Spec, seen: Seen) -> dict[str, str]:
    """Pure: container id -> why it cannot be loaded."""
    driver = chosen(spec, seen[StorageObserved]).driver
    migrating = spec.storage.migrate and bool(seen[MigrationObserved].containers)
    out = {}
    for c in seen[ContainersObserved].entries:
        if c.problem:
            out[c.id] = c.problem
        elif driver and driver not in c.layers and not (c.legacy_rw and migrating):
            out[c.id] = f"its layer is missing from the {driver} driver"
    return out


def find(prefix: str, entries: tuple[ContainerEntry, ...]) -> ContainerEntry:
    """Docker's truncindex: a container by a unique prefix of its id."""
    found = [c for c in entries if c.id.startswith(prefix)]
    if not prefix or not found:
        raise DockyardError(f"no container with an id starting {prefix!r}")
    if len(found) > 1:
        raise DockyardError(
            f"{prefix!r} is ambiguous: it starts {len(found)} container ids "
            f"({', '.join(sorted(c.id[:12] for c in found)[:5])}); give more characters"
        )
    return found[0]


class Containers:
    name: ClassVar[str] = "containers"
    after: ClassVar[tuple[str, ...]] = ("migration",)
    observation: ClassVar[type] = ContainersObserved

    def observe(self, spec: Spec, host: Host) -> ContainersObserved:
        where = host.root / "containers"
        if not where.is_dir():
            return ContainersObserved()
        return ContainersObserved(
            tuple(_entry(p, host.root) for p in sorted(where.iterdir()) if p.is_dir())
        )

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        return []

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        return [
            Note(self.name, "warning", f"container {cid[:12]} is left alone: {why}")
            for cid, why in problems(spec, seen).items()
        ]

    def explain(self, spec: Spec, seen: Seen) -> dict[str, Any]:
        entries = seen[ContainersObserved].entries
        broken = problems(spec, seen)
        return {"count": len(entries), "loaded": len(entries) - len(broken), "broken": broken}

    def apply(self, change: Change, host: Host) -> None:
        raise AssertionError("containers makes no changes")
