"""graphdb: `<root>/linkgraph.db`, Docker's sqlite graph of container names and links.

Created when missing; checked with `PRAGMA integrity_check` when present. A damaged database
is moved aside, never deleted, and made anew, and the plan says so loudly. Every container on
disk gets its name; a name left pointing at a container that no longer exists is reported,
not removed.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.containers import ContainersObserved
from dockyard.reconcilers.directories import modern_root
from dockyard.spec import Spec
from dockyard.state.host import Host
from dockyard.state.safepath import Tree

DB = "linkgraph.db"
LIMIT = 256 << 20  # names and links of containers: megabytes, not gigabytes
ROOT_ENTITY = "0"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entity (id text NOT NULL PRIMARY KEY)",
    "CREATE INDEX IF NOT EXISTS entity_id_index ON entity (id)",
    "CREATE TABLE IF NOT EXISTS edge (entity_id text NOT NULL, parent_id text NULL, "
    "name text NOT NULL, CONSTRAINT parent_fk FOREIGN KEY (parent_id) REFERENCES entity (id), "
    "CONSTRAINT entity_fk FOREIGN KEY (entity_id) REFERENCES entity (id))",
    "CREATE UNIQUE INDEX IF NOT EXISTS name_parent_ix ON edge (parent_id, name)",
)


@dataclass(frozen=True)
class GraphDbObserved:
    path: str
    exists: bool = False
    problem: str | None = None  # what integrity_check or the schema check found
    names: dict[str, str] = field(default_factory=dict)  # "/name" -> entity id, at the root
    taken_aside: tuple[str, ...] = ()  # linkgraph.db.corrupt-N already there


def _inspect(tree: Tree) -> tuple[str | None, dict[str, str]]:
    """Read whole (through safepath, capped) and examined in memory: sqlite never opens a
    path of the root."""
    raw = tree.read(DB, LIMIT) or b""
    try:
        with contextlib.closing(_in_memory(raw)) as db:
            verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                return f"integrity_check says: {verdict}", {}
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"entity", "edge"} <= tables:
                return "not Docker's link graph (no entity and edge tables)", {}
            if not db.execute("SELECT 1 FROM entity WHERE id = ?", (ROOT_ENTITY,)).fetchone():
                return "the root entity is missing", {}
            rows = db.execute(
                "SELECT name, entity_id FROM edge WHERE parent_id = ?", (ROOT_ENTITY,)
            ).fetchall()
            return None, {f"/{name}": entity for name, entity in rows}
    except sqlite3.Error as e:
        return f"not a usable sqlite database ({e})", {}


def names_wanted(seen: Seen) -> dict[str, str]:
    """`/name` -> container id for every container on disk that has a name."""
    return {
        f"/{c.name}": c.id for c in seen[ContainersObserved].entries if c.name and not c.problem
    }


class GraphDb:
    name: ClassVar[str] = "graphdb"
    after: ClassVar[tuple[str, ...]] = ("containers",)
    observation: ClassVar[type] = GraphDbObserved

    def __init__(self) -> None:
        self._written: dict[str, bytes] = {}  # what this run wrote, so an undo removes only it

    def observe(self, spec: Spec, host: Host) -> GraphDbObserved:
        tree, path = host.fs, host.root / DB
        aside = tuple(n for n in tree.listdir("") or () if n.startswith(f"{DB}.corrupt-"))
        if tree.expect(DB, "file").kind == "missing":
            return GraphDbObserved(str(path), taken_aside=aside)
        problem, names = _inspect(tree)
        return GraphDbObserved(str(path), True, problem, names, aside)

    def _aside(self, obs: GraphDbObserved) -> str:
        n = 1
        while f"{DB}.corrupt-{n}" in obs.taken_aside:
            n += 1
        return f"{Path(obs.path).parent}/{DB}.corrupt-{n}"

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        if modern_root(seen):
            return []  # a current dockerd's root: observed only
        obs = seen[GraphDbObserved]
        wanted = names_wanted(seen)
        names = sorted(n for n in wanted if n not in obs.names)
        register = {n: wanted[n] for n in names}
        after: dict[str, object] = {"names": register}
        if not obs.exists:
            return [
                Change(self.name, "database", obs.path, "create", None, after, "does not exist")
            ]
        if obs.problem:
            after["moved_aside_to"] = self._aside(obs)
            before = {"problem": obs.problem}
            return [
                Change(
                    self.name,
                    "database",
                    obs.path,
                    "replace",
                    before,
                    after,
                    "damaged: moved aside, made anew",
                    reversible=False,
                )
            ]
        free = {n: cid for n, cid in register.items() if n not in obs.names}
        if not free:
            return []
        return [
            Change(
                self.name,
                "database",
                obs.path,
                "update",
                {"names": {}},
                {"names": free},
                "containers without their name",
            )
        ]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        if modern_root(seen):
            return []  # a current dockerd's root: observed only
        obs = seen[GraphDbObserved]
        notes = []
        if obs.problem:
            notes.append(
                Note(
                    self.name,
                    "warning",
                    f"{obs.path} IS DAMAGED ({obs.problem}): it is moved aside to "
                    f"{self._aside(obs)}, kept, and a new, empty link graph takes its place",
                )
            )
        on_disk = {c.id for c in seen[ContainersObserved].entries}
        for name, entity in sorted(obs.names.items()):
            if entity != ROOT_ENTITY and entity not in on_disk:
                notes.append(
                    Note(
                        self.name,
                        "warning",
                        f"{name} points to {entity[:12]}, a container that no longer exists; "
                        "left as it is",
                    )
                )
        return notes

    def apply(self, change: Change, host: Host) -> None:
        tree = host.fs
        after = change.after or {}
        if change.action == "delete":
            # The undo of a create in this run: only if nobody has written to it since.
            written = self._written.get(change.name)
            if written is None:
                raise DockyardError(f"{change.name}: not removed, dockyard did not write it")
            tree.remove_file(DB, written, LIMIT)
            return
        if change.action == "replace":
            tree.rename(DB, Path(after["moved_aside_to"]).name)
        seed = tree.read(DB, LIMIT) if change.action == "update" else None
        try:
            with contextlib.closing(_in_memory(seed or b"")) as db:
                if seed is None:
                    _create(db)
                _register(db, after.get("names", {}))
                # The undo of an update: the names this run registered go again.
                before = (change.before or {}).get("names", {})
                gone = {n: e for n, e in before.items() if n not in after.get("names", {})}
                _unregister(db, gone)
                db.commit()
                data = db.serialize()
        except sqlite3.Error as e:
            raise DockyardError(f"{change.name}: sqlite: {e}") from None
        # Written whole and atomically, like every file: never a half-written database.
        tree.write(DB, data, 0o600, replace=change.action != "create")
        self._written[change.name] = data


def _in_memory(data: bytes) -> sqlite3.Connection:
    """A database held in memory, loaded from `data` (empty: a new one)."""
    db = sqlite3.connect(":memory:")
    if data:
        db.deserialize(data)
    return db


def _create(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)
    db.execute("INSERT INTO entity (id) VALUES (?)", (ROOT_ENTITY,))
    db.execute("INSERT INTO edge (entity_id, name) VALUES (?, '/')", (ROOT_ENTITY,))


def _register(db: sqlite3.Connection, names: dict[str, str]) -> None:
    for name, entity in names.items():
        db.execute("INSERT OR IGNORE INTO entity (id) VALUES (?)", (entity,))
        db.execute(
            "INSERT OR IGNORE INTO edge (entity_id, parent_id, name) VALUES (?, ?, ?)",
            (entity, ROOT_ENTITY, name.lstrip("/")),
        )


def _unregister(db: sqlite3.Connection, names: dict[str, str]) -> None:
    for name, entity in names.items():
        db.execute(
            "DELETE FROM edge WHERE parent_id = ? AND name = ? AND entity_id = ?",
            (ROOT_ENTITY, name.lstrip("/"), entity),
        )
