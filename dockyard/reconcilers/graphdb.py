"""graphdb: `<root>/linkgraph.db`, Docker's sqlite graph of container names and links.

Created when missing. A database that fails `PRAGMA integrity_check` (or is no sqlite
database at all) is moved aside, never deleted, and made anew, and the plan says so loudly.
Any other is kept with every name and link in it: what Docker 1.x's `graphdb.NewDatabase` did
at every start (make the tables if missing, put back the root entity `0` and its edge `/`),
dockyard does too. Every container Docker would load gets its name unless it is in the graph
already; a name left pointing at a container that no longer exists is reported, not removed.
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
from dockyard.reconcilers.containers import ContainersObserved, not_loaded
from dockyard.reconcilers.directories import modern_root
from dockyard.spec import Spec
from dockyard.state.host import Host

DB = "linkgraph.db"
LIMIT = 256 << 20  # names and links of containers: megabytes, not gigabytes
ROOT_ENTITY = "0"
# Docker 1.x's schema (pkg/graphdb, unchanged from 1.0 to 1.10), and what NewDatabase ran at
# every start on whatever database it found.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entity (id text NOT NULL PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS edge (entity_id text NOT NULL, parent_id text NULL, "
    "name text NOT NULL, CONSTRAINT parent_fk FOREIGN KEY (parent_id) REFERENCES entity (id), "
    "CONSTRAINT entity_fk FOREIGN KEY (entity_id) REFERENCES entity (id))",
    "CREATE UNIQUE INDEX IF NOT EXISTS name_parent_ix ON edge (parent_id, name)",
)
ROOT = (
    ("DELETE FROM entity WHERE id = ?", (ROOT_ENTITY,)),
    ("INSERT INTO entity (id) VALUES (?)", (ROOT_ENTITY,)),
    ("DELETE FROM edge WHERE entity_id = ? AND name = ?", (ROOT_ENTITY, "/")),
    ("INSERT INTO edge (entity_id, name) VALUES (?, ?)", (ROOT_ENTITY, "/")),
)


@dataclass(frozen=True)
class GraphDbObserved:
    path: str
    exists: bool = False
    problem: str | None = None  # what integrity_check found: the database is moved aside
    unusable: str | None = None  # sound, but Docker's start-up statements fail on it
    restore: tuple[str, ...] = ()  # what Docker's start-up would put back
    names: dict[str, str] = field(default_factory=dict)  # "/name" -> entity id, at the root
    linked: tuple[str, ...] = ()  # every entity reachable from the root, at any depth
    links: int = 0  # edges below the root's children (/webapp/db): kept as they are
    taken_aside: tuple[str, ...] = ()  # linkgraph.db.corrupt-N already there


@dataclass(frozen=True)
class Contents:
    restore: tuple[str, ...] = ()
    names: dict[str, str] = field(default_factory=dict)
    linked: tuple[str, ...] = ()
    links: int = 0


def _missing(db: sqlite3.Connection) -> tuple[str, ...]:
    """What Docker's NewDatabase would add to this database."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"entity", "edge"} <= tables:
        return tuple(f"the {t} table" for t in ("entity", "edge") if t not in tables)
    missing = []
    if not db.execute("SELECT 1 FROM entity WHERE id = ?", (ROOT_ENTITY,)).fetchone():
        missing.append(f"the root entity {ROOT_ENTITY}")
    root_edge = "SELECT 1 FROM edge WHERE entity_id = ? AND name = '/' AND parent_id IS NULL"
    if not db.execute(root_edge, (ROOT_ENTITY,)).fetchone():
        missing.append("the root edge /")
    return tuple(missing)


def _contents(db: sqlite3.Connection, restore: tuple[str, ...]) -> Contents:
    """Names at the root, and every entity the root reaches (a loop in the graph is walked
    once), as Docker's `List("/", -1)` saw them at start."""
    below = "SELECT name, entity_id FROM edge WHERE parent_id = ?"
    names = {f"/{n}": e for n, e in db.execute(below, (ROOT_ENTITY,)).fetchall()}
    seen, todo, links = {ROOT_ENTITY}, list(names.values()), 0
    while todo:
        entity = todo.pop()
        if entity in seen:
            continue
        seen.add(entity)
        children = [e for _, e in db.execute(below, (entity,)).fetchall()]
        links += len(children)
        todo.extend(children)
    return Contents(restore, names, tuple(sorted(seen - {ROOT_ENTITY})), links)


def inspect(raw: bytes) -> tuple[str | None, str | None, Contents]:
    """Pure: (problem, unusable, contents) of a link graph's bytes, examined in memory, so
    sqlite never opens a path of the root."""
    try:
        db = _in_memory(raw)
    except sqlite3.Error as e:
        return f"not a usable sqlite database ({e})", None, Contents()
    with contextlib.closing(db):
        try:
            verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.Error as e:
            return f"not a usable sqlite database ({e})", None, Contents()
        if verdict != "ok":
            return f"integrity_check says: {verdict}", None, Contents()
        try:
            restore = _missing(db)
            _open_as_docker(db)  # on this copy only: does Docker's start-up succeed?
            return None, None, _contents(db, restore)
        except sqlite3.Error as e:
            return None, f"sqlite: {e}", Contents()


def named(spec: Spec, seen: Seen) -> list[tuple[str, str]]:
    """(`/name`, container id) of every container Docker would load that has a name."""
    skipped = not_loaded(spec, seen)
    return sorted(
        (f"/{c.name}", c.id)
        for c in seen[ContainersObserved].entries
        if c.name and c.id not in skipped
    )


class GraphDb:
    name: ClassVar[str] = "graphdb"
    after: ClassVar[tuple[str, ...]] = ("containers",)
    observation: ClassVar[type] = GraphDbObserved

    def __init__(self) -> None:
        self._written: dict[str, bytes] = {}  # what this run wrote, so an undo removes only it
        # What an update replaced (the change, the database's bytes, mode and owner), so that
        # its undo puts back exactly that.
        self._replaced: dict[str, tuple[Change, bytes, int, str]] = {}

    def observe(self, spec: Spec, host: Host) -> GraphDbObserved:
        tree, path = host.fs, host.root / DB
        aside = tuple(n for n in tree.listdir("") or () if n.startswith(f"{DB}.corrupt-"))
        if tree.expect(DB, "file").kind == "missing":
            return GraphDbObserved(str(path), taken_aside=aside)
        problem, unusable, found = inspect(tree.read(DB, LIMIT) or b"")
        return GraphDbObserved(
            str(path),
            True,
            problem,
            unusable,
            found.restore,
            found.names,
            found.linked,
            found.links,
            aside,
        )

    def _aside(self, obs: GraphDbObserved) -> str:
        n = 1
        while f"{DB}.corrupt-{n}" in obs.taken_aside:
            n += 1
        return f"{Path(obs.path).parent}/{DB}.corrupt-{n}"

    def _register(self, spec: Spec, seen: Seen) -> tuple[dict[str, str], dict[str, str]]:
        """The names to add, of containers Docker would load that are nowhere in the graph
        (the first by id when two share a name), and the containers left without their name
        (id -> who holds it)."""
        obs = seen[GraphDbObserved]
        linked = {*obs.linked, *obs.names.values()}
        register: dict[str, str] = {}
        nameless: dict[str, str] = {}
        for name, cid in named(spec, seen):
            if cid in linked:
                continue
            holder = obs.names.get(name) or register.get(name)
            if holder is None:
                register[name] = cid
            else:
                nameless[cid] = f"{name} belongs to {holder[:12]}"
        return register, nameless

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        if modern_root(seen):
            return []  # a current dockerd's root: observed only
        obs = seen[GraphDbObserved]
        register, _ = self._register(spec, seen)
        if not obs.exists:
            after: dict[str, object] = {"names": register}
            return [
                Change(self.name, "database", obs.path, "create", None, after, "does not exist")
            ]
        if obs.problem:
            after = {"names": register, "moved_aside_to": self._aside(obs)}
            return [
                Change(
                    self.name,
                    "database",
                    obs.path,
                    "replace",
                    {"problem": obs.problem},
                    after,
                    "damaged: moved aside, made anew",
                    reversible=False,
                )
            ]
        if obs.unusable or not (register or obs.restore):
            return []
        before: dict[str, object] = {"names": {}}
        after = {"names": register}
        reason = "containers without their name"
        if obs.restore:
            before["missing"], after["restored"] = list(obs.restore), list(obs.restore)
            reason = f"{', '.join(obs.restore)} put back, as Docker did at start; links kept"
        return [Change(self.name, "database", obs.path, "update", before, after, reason)]

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
        if obs.unusable:
            notes.append(
                Note(
                    self.name,
                    "error",
                    f"{obs.path} passes integrity_check, but Docker's own start-up fails on it "
                    f"({obs.unusable}); left as it is: move it aside by hand to start anew",
                )
            )
        if obs.restore and not obs.unusable:
            notes.append(
                Note(
                    self.name,
                    "warning",
                    f"{obs.path} lacks {', '.join(obs.restore)}: put back as Docker did at "
                    f"every start; its {len(obs.names)} names and {obs.links} links are kept",
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
        if not obs.problem:
            _, nameless = self._register(spec, seen)
            notes.extend(
                Note(
                    self.name,
                    "info",
                    f"container {cid[:12]} gets no name in the link graph: {why} (Docker "
                    "would have made one up at start)",
                )
                for cid, why in nameless.items()
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
        if self._put_back(change, host):
            return
        if change.action == "replace":
            tree.rename(DB, Path(after["moved_aside_to"]).name)
        mode, owner = 0o600, None
        seed = None
        if change.action == "update":
            found = tree.expect(DB, "file")
            mode, owner = found.mode, found.owner
            seed = tree.read(DB, LIMIT)
        try:
            with contextlib.closing(_in_memory(seed or b"")) as db:
                if seed is None or after.get("restored"):
                    # What Docker's NewDatabase did at every start. (The undo of a restore
                    # leaves the root in place: Docker would put it back at its next start.)
                    _open_as_docker(db)
                _register(db, after.get("names", {}))
                # The undo of an update: the names this run registered go again.
                before = (change.before or {}).get("names", {})
                gone = {n: e for n, e in before.items() if n not in after.get("names", {})}
                _unregister(db, gone)
                db.commit()
                data = db.serialize()
        except sqlite3.Error as e:
            raise DockyardError(f"{change.name}: sqlite: {e}") from None
        # Written whole and atomically, like every file: never a half-written database; the
        # database updated keeps its mode and owner.
        tree.write(DB, data, mode, owner, replace=change.action != "create")
        self._written[change.name] = data
        if change.action == "update" and seed is not None:
            self._replaced[change.name] = (change, seed, mode, owner or "")

    def _put_back(self, change: Change, host: Host) -> bool:
        """The undo of an update of this run: the database as it was, byte for byte, with its
        mode and owner, if nobody has written it since. False when `change` is no such undo."""
        replaced = self._replaced.get(change.name)
        if replaced is None:
            return False
        done, raw, mode, owner = replaced
        if (change.before, change.after) != (done.after, done.before):
            return False
        if host.fs.read(DB, LIMIT) != self._written.get(change.name):
            raise DockyardError(f"{change.name}: changed since dockyard wrote it; not put back")
        host.fs.write(DB, raw, mode, owner)
        del self._replaced[change.name]
        self._written[change.name] = raw
        return True


def _in_memory(data: bytes) -> sqlite3.Connection:
    """A database held in memory, loaded from `data` (empty: a new one)."""
    db = sqlite3.connect(":memory:")
    if data:
        db.deserialize(data)
    return db


def _open_as_docker(db: sqlite3.Connection) -> None:
    """Docker's graphdb.NewDatabase: the tables if missing, the root entity and its edge
    deleted and inserted again; every other row kept."""
    for statement in SCHEMA:
        db.execute(statement)
    for statement, args in ROOT:
        db.execute(statement, args)


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
