"""containers: the containers found under `<root>/containers`, loaded as Docker's daemon
loaded them at start. Observe-only: a broken container is listed with the reason and left
alone; none is ever removed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.directories import modern_root
from dockyard.reconcilers.migration import MigrationObserved
from dockyard.reconcilers.storage import StorageObserved, chosen
from dockyard.spec import Spec
from dockyard.state.host import Host
from dockyard.state.safepath import TooLarge, Tree

CONFIG_LIMIT = 16 << 20
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


def _is_dir(tree: Tree, rel: str) -> bool:
    try:
        return tree.expect(rel, "directory").kind == "directory"
    except DockyardError:
        return False  # not a usable layer; its own reconciler reports it


def _entry(tree: Tree, cid: str) -> ContainerEntry:
    layers = tuple(d for d, home in LAYER_HOME.items() if _is_dir(tree, f"{home}/{cid}"))
    legacy = tree.expect(f"containers/{cid}/rw", "directory").kind == "directory"
    try:
        raw = tree.read(f"containers/{cid}/config.json", CONFIG_LIMIT)
        if raw is None:
            raise ValueError("missing")
        config = json.loads(raw)
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (ValueError, RecursionError, TooLarge) as e:
        return ContainerEntry(cid, problem=f"config.json: {e}", layers=layers, legacy_rw=legacy)
    name, image = config.get("Name"), config.get("Image")
    return ContainerEntry(
        cid,
        name=str(name).lstrip("/") if isinstance(name, str) and name else None,
        image=image if isinstance(image, str) else None,
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
        tree = host.fs
        if tree.expect("containers", "directory").kind == "missing":
            return ContainersObserved()
        ids = [
            n
            for n in tree.listdir("containers") or ()
            if tree.stat(f"containers/{n}").kind == "directory"
        ]
        return ContainersObserved(tuple(_entry(tree, cid) for cid in ids))

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        if modern_root(seen):
            return []  # a current dockerd's root: observed only
        return []

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        if modern_root(seen):
            return []  # a current dockerd's root: observed only
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
