"""The ledger: what dockyard created or was told to manage, so later runs and `down` know it.

A ledger that cannot be used (unparsable, of another format, a symlink, a FIFO, too large)
reads as empty and says why in `damage`; the next save first moves it aside to
`ledger.json.corrupt-N`, so nothing is lost and dockyard owns only what it creates anew.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.errors import DockyardError
from dockyard.state.safepath import Tree

FORMAT_VERSION = 1
LIMIT = 64 << 20


class Ledger:
    def __init__(
        self,
        tree: Tree,
        name: str,
        owned: dict[str, dict[str, Any]] | None = None,
        damage: str | None = None,
    ) -> None:
        self.tree, self.name = tree, name
        self.owned: dict[str, dict[str, Any]] = owned or {}
        self.damage = damage  # why the ledger found could not be used
        self._dirty = False

    @property
    def path(self) -> str:
        return str(self.tree.path(self.name))

    @classmethod
    def load(cls, tree: Tree, name: str) -> Ledger:
        try:
            tree.expect(name, "file")  # dockyard rewrites it: never a hard link
            raw = tree.read(name, LIMIT)
        except DockyardError as e:
            return cls(tree, name, damage=str(e))
        except OSError as e:
            return cls(tree, name, damage=f"cannot be read: {(e.strerror or str(e)).lower()}")
        if raw is None:
            return cls(tree, name)
        try:
            doc = json.loads(raw)
            owned = doc["owned"]
            if doc.get("format_version") != FORMAT_VERSION or not isinstance(owned, dict):
                raise ValueError
            if not all(isinstance(v, dict) for v in owned.values()):
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
            return cls(tree, name, damage="is not a ledger dockyard can read")
        return cls(tree, name, owned)

    def aside(self) -> str:
        """The name the damaged ledger is moved to: the first free `ledger.json.corrupt-N`."""
        taken = set(self.tree.listdir("") or ())
        n = 1
        while f"{self.name}.corrupt-{n}" in taken:
            n += 1
        return f"{self.name}.corrupt-{n}"

    def notice(self) -> str | None:
        if self.damage is None:
            return None
        return (
            f"dockyard's ledger {self.path} is damaged ({self.damage}): it is moved aside to "
            f"{self.tree.path(self.aside())} when dockyard next writes it, and dockyard owns "
            "only what it creates anew"
        )

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
        if self.damage is not None and self.tree.stat(self.name).kind != "missing":
            self.tree.rename(self.name, self.aside())
        self.damage = None
        doc = {"format_version": FORMAT_VERSION, "owned": self.owned}
        self.tree.write(
            self.name, json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n", 0o600
        )
        self._dirty = False
