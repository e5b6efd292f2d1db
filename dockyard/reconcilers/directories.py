"""directories: Docker's working root and the directories under it, with owner and mode.

A path that should be a directory but is a file, or a symlink leading out of the root, is an
error: dockyard never follows it and never replaces it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from dockyard.change import Attrs, Change, Note
from dockyard.reconcilers.base import Seen
from dockyard.spec import Spec
from dockyard.state.host import Host

Kind = Literal["missing", "directory", "file", "symlink", "other"]
ROOT_MODE = 0o700
ANCESTOR_MODE = 0o755


@dataclass(frozen=True)
class Entry:
    path: str
    kind: Kind
    mode: str | None = None
    owner: str | None = None
    target: str | None = None  # a symlink's real path
    target_kind: Kind | None = None


@dataclass(frozen=True)
class DirectoriesObserved:
    root: str
    owner: str  # uid:gid that dockyard runs as, and so the owner Docker's directories get
    missing_ancestors: tuple[str, ...]
    entries: tuple[Entry, ...]

    def entry(self, path: str) -> Entry:
        return next((e for e in self.entries if e.path == path), Entry(path, "missing"))


def wanted(spec: Spec, root: Path) -> list[tuple[Path, int]]:
    """Docker 1.x's directories under its root, parents first; all private to root (0700)."""
    subdirs = [
        "containers",
        "graph",
        "volumes",
        "init",
        "execdriver",
        f"execdriver/{spec.exec.driver}",
        "tmp",
    ]
    return [(root, ROOT_MODE), *((root / sub, ROOT_MODE) for sub in subdirs)]


def _octal(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


def _inspect(path: Path) -> Entry:
    try:
        st = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return Entry(str(path), "missing")
    if stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(path))
        followed = _inspect(target)
        return Entry(
            str(path),
            "symlink",
            mode=followed.mode,
            owner=followed.owner,
            target=str(target),
            target_kind=followed.kind,
        )
    kind: Kind = (
        "directory" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    )
    return Entry(str(path), kind, mode=_octal(st.st_mode), owner=f"{st.st_uid}:{st.st_gid}")


def _inside(path: str, root: str) -> bool:
    return Path(path).is_relative_to(root) and path != root


class Directories:
    name: ClassVar[str] = "directories"
    after: ClassVar[tuple[str, ...]] = ("preflight",)
    observation: ClassVar[type] = DirectoriesObserved

    def observe(self, spec: Spec, host: Host) -> DirectoriesObserved:
        missing = [p for p in host.root.parents if not p.exists()]
        return DirectoriesObserved(
            root=str(host.root),
            owner=f"{os.geteuid()}:{os.getegid()}",
            missing_ancestors=tuple(str(p) for p in reversed(missing)),
            entries=tuple(_inspect(path) for path, _ in wanted(spec, host.root)),
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
                {"mode": _octal(ANCESTOR_MODE)},
                "parent of the root does not exist",
                claim=True,
            )
            for path in got.missing_ancestors
        ]
        # A spec that requires root is applied as root only, so its directories belong to root.
        owner = "0:0" if spec.preflight.require_root else got.owner
        for path, mode in wanted(spec, Path(got.root)):
            entry = got.entry(str(path))
            want = {"mode": _octal(mode), "owner": owner}
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
            elif self._usable(entry, got.root):
                have = {"mode": entry.mode, "owner": entry.owner}
                drifted = [k for k in want if have[k] != want[k]]
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
    def _usable(entry: Entry, root: str) -> bool:
        if entry.kind == "directory":
            return True
        return (
            entry.kind == "symlink"
            and entry.target_kind == "directory"
            and entry.target is not None
            and _inside(entry.target, root)
        )

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        got = seen[DirectoriesObserved]
        notes = []
        for path, _ in wanted(spec, Path(got.root)):
            entry = got.entry(str(path))
            if entry.kind in ("missing", "directory") or self._usable(entry, got.root):
                continue
            if entry.kind == "symlink" and entry.target_kind == "missing":
                problem = f"is a symlink to {entry.target}, which does not exist"
            elif entry.kind == "symlink" and entry.target_kind != "directory":
                problem = f"is a symlink to {entry.target}, which is not a directory"
            elif entry.kind == "symlink":
                problem = f"is a symlink leading out of the root, to {entry.target}; not followed"
            else:
                problem = f"exists but is a {entry.kind}, not a directory; it is left alone"
            notes.append(Note(self.name, "error", f"{entry.path} {problem}"))
        return notes

    def apply(self, change: Change, host: Host) -> None:
        path = Path(change.name)
        after = change.after or {}
        if change.action == "create":
            mode = int(after["mode"], 8)
            path.mkdir(mode=mode)
            self._set(path, host.root, after)
        elif change.action == "update":
            self._set(path, host.root, after)
        elif change.action == "delete":
            # Only ever the undo of a create in this run; rmdir refuses a directory with content.
            path.rmdir()
        else:
            raise AssertionError(change.action)

    @staticmethod
    def _set(path: Path, root: Path, attrs: Attrs) -> None:
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if not _inside(str(target), str(root)):
                raise OSError(f"{path} now leads out of the root, to {target}; not followed")
            path = target
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            if "owner" in attrs:
                uid, gid = (int(n) for n in attrs["owner"].split(":"))
                os.fchown(fd, uid, gid)
            os.fchmod(fd, int(attrs["mode"], 8))
        finally:
            os.close(fd)
