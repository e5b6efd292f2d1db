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
from dockyard.state import gojson
from dockyard.state.host import Host
from dockyard.state.safepath import TooLarge, Tree

# What Docker 1.x's TagStore.save wrote for an empty store: json.Marshal's bytes, no spaces.
EMPTY = '{"Repositories":{}}'
LIMIT = 64 << 20
LOAD_FAILS = "Docker's json.Unmarshal fails on it"


@dataclass(frozen=True)
class TagStoreObserved:
    root: str
    files: dict[str, str]  # repositories-<driver> -> "ok", "missing" or what is wrong


def problem(raw: bytes) -> str | None:
    """Why Docker 1.x could not load this tag store (`map[string]map[string]string` under
    `Repositories`), or None. `{}`, `null` and null repositories or tags load: Go leaves the
    field as it was."""
    try:
        doc = gojson.unmarshal(raw)
    except (ValueError, RecursionError) as e:
        return f"not valid JSON ({e})"
    top = gojson.members(doc)
    if top is None:
        if doc is None:
            return None
        return f"valid JSON, but {gojson.a_kind(doc)} where an object belongs; {LOAD_FAILS}"
    for repositories in gojson.field(top, "Repositories"):
        repos = gojson.members(repositories)
        if repos is None and repositories is not None:
            return f'"Repositories" is {gojson.a_kind(repositories)}, not an object; {LOAD_FAILS}'
        for name, tags in repos or ():
            tag_map = gojson.members(tags)
            if tag_map is None and tags is not None:
                return (
                    f"repository {name!r} is {gojson.a_kind(tags)}, not an object of "
                    f"tag -> image id; {LOAD_FAILS}"
                )
            for tag, image in tag_map or ():
                if image is not None and not isinstance(image, str):
                    return f"{name}:{tag} is {gojson.a_kind(image)}, not an image id; {LOAD_FAILS}"
    return None


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
