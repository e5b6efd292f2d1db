"""directories: Docker's working root and the directories under it, with owner and mode.

Anything other than a directory where one belongs (a file, a symlink wherever it points, a
FIFO, a device) is an error: dockyard never follows it and never replaces it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dockyard.change import Attrs, Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.spec import Spec
from dockyard.state.host import Host
from dockyard.state.safepath import Kind, Tree

ROOT_MODE = 0o700
ANCESTOR_MODE = 0o755


@dataclass(frozen=True)
class Entry:
    path: str
    kind: Kind | None  # None: not reachable, a parent is not a directory
    mode: str | None = None
    owner: str | None = None
    found: str | None = None  # what stands there, as a message says it, when not a directory


@dataclass(frozen=True)
class DirectoriesObserved:
    root: str
    owner: str  # uid:gid that dockyard runs as, and so the owner Docker's directories get
    missing_ancestors: tuple[str, ...]
    entries: tuple[Entry, ...]
    # What shows that a current dockerd uses the root: image/, buildkit/, a config.v2.json.
    modern: tuple[str, ...] = ()

    def entry(self, path: str) -> Entry:
        return next((e for e in self.entries if e.path == path), Entry(path, "missing"))


SUBDIRS = ("containers", "graph", "volumes", "init", "execdriver")
MODERN_DIRS = ("image", "buildkit")
# The modes a current dockerd sets at each start (so that a container's user can traverse
# them); on a root it uses they are accepted as well as Docker 1.x's 0700.
MODERN_MODES = {"": 0o710, "containers": 0o710, "volumes": 0o701}


def wanted(spec: Spec, root: Path) -> list[tuple[Path, int]]:
    """Docker 1.x's directories under its root, parents first; all private to root (0700)."""
    subdirs = [*SUBDIRS, f"execdriver/{spec.exec.driver}", "tmp"]
    return [(root, ROOT_MODE), *((root / sub, ROOT_MODE) for sub in subdirs)]


def inspect(tree: Tree, rel: str) -> Entry:
    """What stands at `rel` below the tree, never following a symlink."""
    path = str(tree.path(rel))
    try:
        got = tree.stat(rel)
    except DockyardError:
        return Entry(path, None)  # the parent's own entry says what is wrong
    if got.kind == "missing":
        return Entry(path, "missing")
    found = None if got.kind == "directory" else got.describe()
    return Entry(path, got.kind, got.octal, got.owner, found)


def modern_markers(tree: Tree) -> tuple[str, ...]:
    """What shows that a current dockerd uses this root: its image store, its build cache, a
    container in its format."""
    found = [f"{d}/" for d in MODERN_DIRS if tree.stat(d).kind == "directory"]
    if tree.stat("containers").kind == "directory":
        for cid in tree.listdir("containers") or ():
            if tree.stat(f"containers/{cid}/config.v2.json").kind == "file":
                found.append(f"containers/{cid[:12]}/config.v2.json")
                break
    return tuple(found)


def modern_root(seen: Seen) -> str | None:
    """Pure: why the Docker 1.x-only concerns only observe this root, or None."""
    got = seen.get(DirectoriesObserved)
    if got is None or not got.modern:
        return None
    return (
        f"{got.root} is used by a current Docker daemon ({', '.join(got.modern)}): the Docker "
        "1.x-only concerns (migration, tag store, link graph, containers) only observe it"
    )


def relative(path: str, root: Path) -> str:
    rel = Path(path).relative_to(root)
    return "" if rel == Path() else str(rel)


class Directories:
    name: ClassVar[str] = "directories"
    after: ClassVar[tuple[str, ...]] = ("preflight",)
    observation: ClassVar[type] = DirectoriesObserved

    def observe(self, spec: Spec, host: Host) -> DirectoriesObserved:
        missing = [p for p in host.root.parents if not p.exists()]
        tree = host.fs
        entries = tuple(
            inspect(tree, relative(str(path), host.root)) for path, _ in wanted(spec, host.root)
        )
        root_there = entries[0].kind == "directory"
        return DirectoriesObserved(
            root=str(host.root),
            owner=f"{os.geteuid()}:{os.getegid()}",
            missing_ancestors=tuple(str(p) for p in reversed(missing)),
            entries=entries,
            modern=modern_markers(tree) if root_there else (),
        )

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        got = seen[DirectoriesObserved]
        changes = [
            Change(
                self.name,
                "directory",
                path,
                "create",
                None,
                {"mode": f"{ANCESTOR_MODE:04o}"},
                "parent of the root does not exist",
                claim=True,
            )
            for path in got.missing_ancestors
        ]
        # A spec that requires root is applied as root only, so its directories belong to root.
        owner = "0:0" if spec.preflight.require_root else got.owner
        for path, mode in wanted(spec, Path(got.root)):
            entry = got.entry(str(path))
            want = {"mode": f"{mode:04o}", "owner": owner}
            if entry.kind == "missing":
                changes.append(
                    Change(
                        self.name,
                        "directory",
                        entry.path,
                        "create",
                        None,
                        want,
                        "does not exist",
                        claim=True,
                    )
                )
            elif entry.kind == "directory":
                have = {"mode": entry.mode, "owner": entry.owner}
                drifted = [k for k in want if have[k] != want[k]]
                if drifted == ["mode"] and self._daemons_mode(got, path, entry):
                    drifted = []
                if drifted:
                    changes.append(
                        Change(
                            self.name,
                            "directory",
                            entry.path,
                            "update",
                            have,
                            want,
                            f"{' and '.join(drifted)} drifted",
                        )
                    )
        return changes

    @staticmethod
    def _daemons_mode(got: DirectoriesObserved, path: Path, entry: Entry) -> bool:
        """The mode a current dockerd gives this directory, on a root it uses."""
        rel = relative(str(path), Path(got.root))
        modern = MODERN_MODES.get(rel)
        return bool(got.modern) and modern is not None and entry.mode == f"{modern:04o}"

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        got = seen[DirectoriesObserved]
        why = modern_root(seen)
        notes = [Note(self.name, "info", why)] if why else []
        return notes + [
            Note(
                self.name,
                "error",
                f"{entry.path} is {entry.found}, not a directory; left alone, never followed",
                drift=True,
            )
            for entry in (got.entry(str(path)) for path, _ in wanted(spec, Path(got.root)))
            if entry.found is not None
        ]

    def apply(self, change: Change, host: Host) -> None:
        after = change.after or {}
        if not Path(change.name).is_relative_to(host.root):
            # A parent of the root: the system's own path, created as any mkdir -p would.
            if change.action == "create":
                Path(change.name).mkdir(mode=int(after["mode"], 8))
            elif change.action == "delete":
                Path(change.name).rmdir()
            return
        rel = relative(change.name, host.root)
        if change.action == "create":
            host.fs.mkdir(rel, int(after["mode"], 8))
            self._set(host.fs, rel, after)
        elif change.action == "update":
            self._set(host.fs, rel, after)
        elif change.action == "delete":
            # Only ever the undo of a create in this run; rmdir refuses a directory with content.
            host.fs.rmdir(rel)
        else:
            raise AssertionError(change.action)

    @staticmethod
    def _set(tree: Tree, rel: str, attrs: Attrs) -> None:
        tree.set_attrs(rel, "directory", int(attrs["mode"], 8), attrs.get("owner"))
