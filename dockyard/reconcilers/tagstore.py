"""tagstore: `<root>/repositories-<driver>`, the repository/tag index of the chosen driver.

Created empty when missing, never overwritten: when a legacy `repositories` is about to be
migrated into it, the migration brings it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.fsutil import create_new
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.migration import MigrationObserved
from dockyard.reconcilers.storage import StorageObserved, chosen
from dockyard.spec import Spec
from dockyard.state.host import Host

EMPTY = '{"Repositories": {}}'


@dataclass(frozen=True)
class TagStoreObserved:
    root: str
    files: dict[str, str]  # repositories-<driver> -> "ok", "missing" or what is wrong


def _state(path: Path) -> str:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as e:
        return f"not valid JSON ({e})"
    if not isinstance(doc, dict) or not isinstance(doc.get("Repositories"), dict):
        return 'valid JSON, but without a "Repositories" mapping'
    return "ok"


class TagStore:
    name: ClassVar[str] = "tagstore"
    after: ClassVar[tuple[str, ...]] = ("migration",)
    observation: ClassVar[type] = TagStoreObserved

    def observe(self, spec: Spec, host: Host) -> TagStoreObserved:
        files = {p.name: _state(p) for p in sorted(host.root.glob("repositories-*"))}
        return TagStoreObserved(str(host.root), files)

    def _target(self, spec: Spec, seen: Seen) -> str | None:
        driver = chosen(spec, seen[StorageObserved]).driver
        return f"repositories-{driver}" if driver else None

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        obs = seen[TagStoreObserved]
        target = self._target(spec, seen)
        if target is None or obs.files.get(target, "missing") != "missing":
            return []
        migration = seen[MigrationObserved]
        if spec.storage.migrate and migration.repositories == "ok" and migration.images:
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
        obs = seen[TagStoreObserved]
        target = self._target(spec, seen)
        state = obs.files.get(target or "", "missing")
        if target and state not in ("ok", "missing"):
            return [Note(self.name, "error", f"{obs.root}/{target}: {state}; left as it is")]
        return []

    def apply(self, change: Change, host: Host) -> None:
        path = Path(change.name)
        if change.action == "delete":
            path.unlink(missing_ok=True)  # the undo of a create in this run
            return
        if not create_new(path, str((change.after or {})["content"]).encode(), 0o600):
            raise OSError(f"{path} appeared since it was observed; left as it is")
