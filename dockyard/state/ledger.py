"""The ledger: what dockyard created or was told to manage, so later runs and `down` know it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError
from dockyard.fsutil import atomic_write

FORMAT_VERSION = 1


class Ledger:
    def __init__(self, path: Path, owned: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = path
        self.owned: dict[str, dict[str, Any]] = owned or {}
        self._dirty = False

    @classmethod
    def load(cls, path: Path) -> Ledger:
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as e:
            raise DockyardError(f"{path}: cannot read dockyard's ledger: {e.strerror}") from None
        try:
            doc = json.loads(raw)
            owned = doc["owned"]
            if doc.get("format_version") != FORMAT_VERSION or not isinstance(owned, dict):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise DockyardError(
                f"{path}: dockyard's ledger is damaged; it records what dockyard created. "
                "Move it aside to start a new one (dockyard then owns only what it creates anew)."
            ) from None
        return cls(path, owned)

    def owns(self, reconciler: str, name: str) -> bool:
        return name in self.owned.get(reconciler, {})

    def facts(self, reconciler: str, name: str) -> Any:
        return self.owned.get(reconciler, {}).get(name)

    def claim(self, reconciler: str, name: str, facts: Any = True) -> None:
        """Record `name` as dockyard's; dict facts are merged into what is already known."""
        entries = self.owned.setdefault(reconciler, {})
        old = entries.get(name)
        new = {**old, **facts} if isinstance(old, dict) and isinstance(facts, dict) else facts
        if old != new:
            entries[name] = new
            self._dirty = True

    def release(self, reconciler: str, name: str) -> None:
        if self.owned.get(reconciler, {}).pop(name, None) is not None:
            self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        doc = {"format_version": FORMAT_VERSION, "owned": self.owned}
        atomic_write(self.path, json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n", 0o600)
        self._dirty = False
