"""tagstore: `<root>/repositories-<driver>`, the repository/tag index of the chosen driver.

Created empty when missing, never overwritten: when a legacy `repositories` is about to be
migrated into it, the migration brings it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.directories import modern_root
from dockyard.reconcilers.migration import moves_tags
from dockyard.reconcilers.storage import StorageObserved, chosen
from dockyard.spec import Spec
from dockyard.state.host import Host
from dockyard.state.safepath import TooLarge, Tree
from dockyard.state.tagfile import problem

# What Docker 1.x's TagStore.save wrote for an empty store: json.Marshal's bytes, no spaces.
EMPTY = '{"Repositories":{}}'
LIMIT = 64 << 20


@dataclass(frozen=True)
class TagStoreObserved:
    root: str
    files: dict[str, str]  # repositories-<driver> -> "ok", "missing" or what is wrong


def _state(tree: Tree, name: str) -> str:
    """ok, missing, or what is wrong; a name that is not a regular file is `Unsafe`."""
    try:
        raw = tree.read(name, LIMIT)
    except TooLarge as e:
        return str(e).removeprefix(f"{tree.path(name)} ")
    if raw is None:
        return "missing"
    return problem(raw) or "ok"


class TagStore:
    name: ClassVar[str] = "tagstore"
    after: ClassVar[tuple[str, ...]] = ("migration",)
    observation: ClassVar[type] = TagStoreObserved

    def observe(self, spec: Spec, host: Host) -> TagStoreObserved:
        tree = host.fs
        names = [n for n in tree.listdir("") or () if n.startswith("repositories-")]
        files = {name: _state(tree, name) for name in names}
        return TagStoreObserved(str(host.root), files)

    def _target(self, spec: Spec, seen: Seen) -> str | None:
        driver = chosen(spec, seen[StorageObserved]).driver
        return f"repositories-{driver}" if driver else None

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        if modern_root(seen):
            return []  # a current dockerd's root: observed only
        obs = seen[TagStoreObserved]
        target = self._target(spec, seen)
        if target is None or obs.files.get(target, "missing") != "missing":
            return []
        if moves_tags(spec, seen):
            return []  # the migration moves the legacy tags here
        return [
            Change(
                self.name,
                "file",
                f"{obs.root}/{target}",
                "create",
                None,
                {"content": EMPTY},
                "no tag store for the driver",
            )
        ]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        if modern_root(seen):
            return []  # a current dockerd's root: observed only
        obs = seen[TagStoreObserved]
        target = self._target(spec, seen)
        state = obs.files.get(target or "", "missing")
        if target and state not in ("ok", "missing"):
            return [Note(self.name, "error", f"{obs.root}/{target}: {state}; left as it is")]
        return []

    def apply(self, change: Change, host: Host) -> None:
        name = Path(change.name).name
        if change.action == "delete":
            # The undo of a create in this run: only if it still holds what dockyard wrote.
            host.fs.remove_file(name, str((change.before or {})["content"]).encode())
            return
        content = str((change.after or {})["content"]).encode()
        if not host.fs.write(name, content, 0o600, replace=False):
            raise DockyardError(f"{change.name} appeared since it was observed; left as it is")
