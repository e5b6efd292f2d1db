"""containers: the containers found under `<root>/containers`, judged by the rules Docker 1.x's
daemon loaded them by at start (`daemon.restore` and `daemon.load`, Docker 1.6):

- config.json decodes (Go's encoding/json: keys in any case, no wrong types in the fields
  dockyard reads) and so does hostconfig.json when there is one;
- the id it names is the directory's name ("Container X is stored at Y" otherwise);
- it was made by the graph driver in use: its `Driver`, or no `Driver` at all when the driver
  is aufs (containers from before drivers existed).

Observe-only: a container Docker would not load is listed with the reason and left alone (it
gets no name in the link graph), and so is one whose layer is missing; none is ever removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.directories import modern_root
from dockyard.reconcilers.migration import MigrationObserved
from dockyard.reconcilers.storage import StorageObserved, chosen
from dockyard.spec import Spec
from dockyard.state import gojson
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
    problem: str | None = None  # why Docker could not load its config at all
    layers: tuple[str, ...] = ()  # drivers whose layer directory for this container exists
    legacy_rw: bool = False  # still in the pre-driver layout, waiting for migration
    driver: str = ""  # the graph driver its config.json names ("" for none)


@dataclass(frozen=True)
class ContainersObserved:
    entries: tuple[ContainerEntry, ...] = ()


def _is_dir(tree: Tree, rel: str) -> bool:
    try:
        return tree.expect(rel, "directory").kind == "directory"
    except DockyardError:
        return False  # not a usable layer; its own reconciler reports it


class Unloadable(ValueError):
    """Why Docker's `daemon.load` fails on a container."""


def _string(pairs: gojson.Pairs, name: str) -> str:
    """A string field of Docker's Container struct as Go decoded it: "" when absent or null."""
    value = ""
    for found in gojson.field(pairs, name):
        if found is not None and not isinstance(found, str):
            raise Unloadable(f"config.json: {name} is {gojson.a_kind(found)}, not a string")
        value = found if found is not None else value
    return value


def parse_config(cid: str, raw: bytes | None, hostconfig: bytes | None) -> dict[str, str]:
    """Pure: Name, Image and Driver of a container, as Docker 1.6 loaded it; `Unloadable`
    when it did not."""
    if raw is None:
        raise Unloadable("config.json: missing")
    try:
        doc = gojson.decode_first(raw)  # json.Decoder: what follows the first value is unread
    except (ValueError, RecursionError) as e:
        raise Unloadable(f"config.json: {e}") from None
    pairs = gojson.members(doc)
    if pairs is None and doc is not None:
        raise Unloadable(f"config.json: {gojson.a_kind(doc)}, not an object")
    fields = {f: _string(pairs or gojson.Pairs(), f) for f in ("ID", "Name", "Image", "Driver")}
    if fields["ID"] != cid:
        raise Unloadable(
            f"its config.json names container {fields['ID'][:12] or 'with no id'}, not the "
            f'directory it is in (Docker: "Container {fields["ID"]} is stored at {cid}")'
        )
    if hostconfig is not None:
        try:
            host = gojson.unmarshal(hostconfig)
        except (ValueError, RecursionError) as e:
            raise Unloadable(f"hostconfig.json: {e}") from None
        if host is not None and gojson.members(host) is None:
            raise Unloadable(f"hostconfig.json: {gojson.a_kind(host)}, not an object")
    return fields


def _entry(tree: Tree, cid: str) -> ContainerEntry:
    layers = tuple(d for d, home in LAYER_HOME.items() if _is_dir(tree, f"{home}/{cid}"))
    legacy = tree.expect(f"containers/{cid}/rw", "directory").kind == "directory"
    try:
        fields = parse_config(
            cid,
            tree.read(f"containers/{cid}/config.json", CONFIG_LIMIT),
            tree.read(f"containers/{cid}/hostconfig.json", CONFIG_LIMIT),
        )
    except (Unloadable, TooLarge) as e:
        return ContainerEntry(cid, problem=str(e), layers=layers, legacy_rw=legacy)
    return ContainerEntry(
        cid,
        name=fields["Name"].lstrip("/") or None,
        image=fields["Image"] or None,
        layers=layers,
        legacy_rw=legacy,
        driver=fields["Driver"],
    )


def not_loaded(spec: Spec, seen: Seen) -> dict[str, str]:
    """Pure: container id -> why Docker 1.x would not load it with the driver in use."""
    driver = chosen(spec, seen[StorageObserved]).driver
    migrating = spec.storage.migrate and bool(seen[MigrationObserved].containers)
    out = {}
    for c in seen[ContainersObserved].entries:
        # The migration records its driver in each legacy container it moves.
        recorded = c.driver == "" and (driver == "aufs" or (c.legacy_rw and migrating))
        if c.problem:
            out[c.id] = c.problem
        elif driver and c.driver != driver and not recorded:
            out[c.id] = (
                f"created with the {c.driver} graph driver, not {driver}"
                if c.driver
                else f"its config.json names no graph driver, which Docker took for aufs, "
                f"not {driver}"
            ) + "; Docker loads only the containers of its driver"
    return out


def problems(spec: Spec, seen: Seen) -> dict[str, str]:
    """Pure: container id -> why it is left alone (not loaded, or its layer is missing)."""
    driver = chosen(spec, seen[StorageObserved]).driver
    migrating = spec.storage.migrate and bool(seen[MigrationObserved].containers)
    out = not_loaded(spec, seen)
    for c in seen[ContainersObserved].entries:
        if c.id in out:
            continue
        if driver and driver not in c.layers and not (c.legacy_rw and migrating):
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
        why = modern_root(seen)
        if why:  # a current dockerd's containers: not Docker 1.x's to load, nor broken
            return {"count": len(entries), "observed_only": why}
        broken = problems(spec, seen)
        return {"count": len(entries), "loaded": len(entries) - len(broken), "broken": broken}

    def apply(self, change: Change, host: Host) -> None:
        raise AssertionError("containers makes no changes")
