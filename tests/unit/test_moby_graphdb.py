"""moby's graphdb tests (pkg/graphdb/graphdb_test.go, Docker 1.6) carried over as far as
dockyard implements graph behaviour: the database Docker's NewDatabase makes (and puts back at
every start), names set and removed at the root (Set/Delete of "/name"), and the walk of the
whole graph (List("/", -1), which Docker's restore used to tell which containers already have
a place). Graphs are built edge by edge as Docker's Set left them.

Not carried over, because dockyard does none of it: Set below the root (links are only kept,
never made: TestCreateChild, TestAddSelfAsChild, TestAddChildToNonExistantRoot), lists to a
given depth (TestChildren at depth 5, TestListAllSubChildren from /webapp), Parents, Refs,
RefPaths, Purge, Rename, Get of a path, and concurrent writes.
"""

from __future__ import annotations

import contextlib
import sqlite3

from dockyard.reconcilers.graphdb import (
    ROOT_ENTITY,
    Contents,
    _in_memory,
    _open_as_docker,
    _register,
    _unregister,
    inspect,
)

Edge = tuple[str, str, str]  # (parent path, name, entity id): Docker's Set(parent/name, id)


def graph(edges: list[Edge], names: list[dict[str, str]] | None = None) -> Contents:
    """A new database as NewDatabase made it, the edges of Docker's Sets, then dockyard's
    registrations at the root, read back as dockyard reads a link graph."""
    with contextlib.closing(_in_memory(b"")) as db:
        _open_as_docker(db)
        paths = {"/": ROOT_ENTITY}
        for parent, name, entity in edges:
            db.execute("INSERT OR IGNORE INTO entity (id) VALUES (?)", (entity,))
            db.execute(
                "INSERT INTO edge (entity_id, parent_id, name) VALUES (?, ?, ?)",
                (entity, paths[parent], name),
            )
            paths[f"{parent.rstrip('/')}/{name}"] = entity
        for batch in names or []:
            _register(db, batch)
        db.commit()
        problem, unusable, found = inspect(db.serialize())
    assert (problem, unusable) == (None, None)
    return found


def test_new_database_has_the_root_entity() -> None:
    """TestNewDatabase, TestCreateRootEntity, TestGetRootEntity: entity "0" at "/"."""
    with contextlib.closing(_in_memory(b"")) as db:
        _open_as_docker(db)
        assert db.execute("SELECT entity_id, parent_id FROM edge WHERE name = '/'").fetchall() == [
            ("0", None)
        ]
        problem, unusable, found = inspect(db.serialize())
    assert (problem, unusable, found) == (None, None, Contents())


def test_set_entity_with_different_name() -> None:
    """TestSetEntityWithDifferentName, TestCreateMultipleNames: one id under two names."""
    found = graph([], [{"/test": "1"}, {"/other": "1"}])
    assert found.names == {"/test": "1", "/other": "1"}
    assert found.linked == ("1",)


def test_set_duplicate_entity() -> None:
    """TestSetDuplicateEntity: a second Set of /foo fails in Docker; dockyard never replaces
    the first either (it registers only free names)."""
    assert graph([], [{"/foo": "42"}, {"/foo": "43"}]).names == {"/foo": "42"}


def test_exists() -> None:
    """TestExistsTrue, TestExistsFalse."""
    names = graph([], [{"/testing": "1"}]).names
    assert "/testing" in names
    assert "/testing" not in graph([], [{"/toerhe": "1"}]).names


def test_delete_entity_at_the_root() -> None:
    """TestDeleteEntity, at the root: the name goes, and with it the entity's only place."""
    with contextlib.closing(_in_memory(b"")) as db:
        _open_as_docker(db)
        _register(db, {"/webapp": "1", "/db": "2"})
        _unregister(db, {"/webapp": "1"})
        found = inspect(db.serialize())[2]
    assert (found.names, found.linked) == ({"/db": "2"}, ("2",))


def test_list_all_root_children() -> None:
    """TestListAllRootChildren: five names set at the root, five entities listed."""
    found = graph([("/", str(i), str(i)) for i in range(1, 6)])
    assert len(found.names) == 5
    assert len(found.linked) == 5


def test_children_of_two_chains() -> None:
    """TestChildren: /1/2/3/4/5 and /10/11/.../29; Children("/", 20) lists all 25."""
    edges: list[Edge] = []
    for numbers in (range(1, 6), range(10, 30)):
        parent = "/"
        for i in numbers:
            edges.append((parent, str(i), str(i)))
            parent = f"{parent.rstrip('/')}/{i}"
    found = graph(edges)
    assert found.names == {"/1": "1", "/10": "10"}
    assert len(found.linked) == 25
    assert found.links == 25 - 2


WEBAPP: list[Edge] = [  # TestListAllSubChildren, TestGetEntityByPath, TestDeleteEntity
    ("/", "webapp", "1"),
    ("/", "db", "2"),
    ("/", "logs", "4"),
    ("/db", "logs", "4"),
    ("/", "sentry", "3"),
    ("/webapp", "sentry", "3"),
    ("/webapp", "db", "2"),
]


def test_list_all_sub_children() -> None:
    found = graph(WEBAPP)
    assert found.names == {"/webapp": "1", "/db": "2", "/logs": "4", "/sentry": "3"}
    assert found.linked == ("1", "2", "3", "4")
    assert found.links == 3  # /db/logs, /webapp/sentry, /webapp/db


def test_walk_all_reaches_an_entity_known_only_by_a_link() -> None:
    """TestWalkAll, TestEnitiesPaths: 4 is only /db/logs and /webapp/logs, 5 also
    /webapp/same-ref-diff-name; Docker's restore found every one, so none gets a new name."""
    edges: list[Edge] = [
        ("/", "webapp", "1"),
        ("/", "db", "2"),
        ("/db", "logs", "4"),
        ("/webapp", "logs", "4"),
        ("/", "sentry", "3"),
        ("/webapp", "sentry", "3"),
        ("/webapp", "db", "2"),
        ("/", "gograph", "5"),
        ("/webapp", "same-ref-diff-name", "5"),
    ]
    found = graph(edges)
    assert found.names == {"/webapp": "1", "/db": "2", "/sentry": "3", "/gograph": "5"}
    assert found.linked == ("1", "2", "3", "4", "5")


def test_a_database_without_its_root_is_what_new_database_repairs() -> None:
    """NewDatabase deleted and inserted the root entity and its edge at every start."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        _open_as_docker(db)
        _register(db, {"/webapp": "1", "/db": "2"})
        db.execute("DELETE FROM entity WHERE id = '0'")
        db.commit()
        found = inspect(db.serialize())[2]
        assert found.restore == ("the root entity 0",)
        db.execute("DELETE FROM edge WHERE name = '/'")
        db.commit()
        assert inspect(db.serialize())[2].restore == ("the root entity 0", "the root edge /")
        _open_as_docker(db)
        db.commit()
        found = inspect(db.serialize())[2]
    assert (found.restore, found.names) == ((), {"/webapp": "1", "/db": "2"})
