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
from dockyard.fsutil import fsync_dir
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.containers import ContainersObserved
from dockyard.spec import Spec
from dockyard.state.host import Host

DB = "linkgraph.db"
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


def _inspect(path: Path) -> tuple[str | None, dict[str, str]]:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
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
    except sqlite3.DatabaseError as e:
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

    def observe(self, spec: Spec, host: Host) -> GraphDbObserved:
        path = host.root / DB
        aside = tuple(sorted(p.name for p in host.root.glob(f"{DB}.corrupt-*")))
        if not path.exists():
            return GraphDbObserved(str(path), taken_aside=aside)
        problem, names = _inspect(path)
        return GraphDbObserved(str(path), True, problem, names, aside)

    def _aside(self, obs: GraphDbObserved) -> str:
        n = 1
        while f"{DB}.corrupt-{n}" in obs.taken_aside:
            n += 1
        return f"{Path(obs.path).parent}/{DB}.corrupt-{n}"

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
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
        path = Path(change.name)
        after = change.after or {}
        if change.action == "delete":
            path.unlink(missing_ok=True)  # the undo of a create in this run
            return
        if change.action == "replace":
            path.rename(after["moved_aside_to"])
            fsync_dir(path.parent)
        if change.action in ("create", "replace"):
            _create(path)
        _register(path, after.get("names", {}))


def _create(path: Path) -> None:
    """A new graph, built beside its place and renamed into it: never a half-made database."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(tmp)) as db:
        for statement in SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO entity (id) VALUES (?)", (ROOT_ENTITY,))
        db.execute("INSERT INTO edge (entity_id, name) VALUES (?, '/')", (ROOT_ENTITY,))
        db.commit()
    tmp.chmod(0o600)
    tmp.rename(path)
    fsync_dir(path.parent)


def _register(path: Path, names: dict[str, str]) -> None:
    if not names:
        return
    with contextlib.closing(sqlite3.connect(path)) as db:
        for name, entity in names.items():
            db.execute("INSERT OR IGNORE INTO entity (id) VALUES (?)", (entity,))
            db.execute(
                "INSERT OR IGNORE INTO edge (entity_id, parent_id, name) VALUES (?, ?, ?)",
                (entity, ROOT_ENTITY, name.lstrip("/")),
            )
        db.commit()
