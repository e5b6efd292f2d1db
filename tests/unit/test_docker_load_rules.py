"""What Docker 1.x's daemon loaded at start, and what dockyard therefore keeps, names and writes:
the tag store (graph/tags.go), containers (daemon.restore and daemon.load) and the link graph
(pkg/graphdb's NewDatabase), all as of Docker 1.6. Files in temporary directories."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from dockyard.reconcilers.containers import Unloadable, parse_config
from dockyard.reconcilers.graphdb import inspect
from dockyard.reconcilers.tagstore import problem
from tests.storage_world import converge, fake_proc, spec_text

LOAD_FAILS = "Docker's json.Unmarshal fails on it"

# (tag store bytes, why Docker's json.Unmarshal into its TagStore fails, or None: it loads)
TAG_STORES = [
    (b'{"Repositories":{}}', None),
    (b"{}", None),
    (b'{"Repositories": null}', None),
    (b"null", None),
    (b'{"Repositories": {"busybox": {"latest": "4986bf8c1536"}}, "other": [1]}', None),
    (b'{"repositories": {"busybox": {"latest": "4986bf8c1536"}}}', None),  # Go: any case
    (b'{"Repositories": {"busybox": null, "app": {"v1": null}}}', None),  # null: left as is
    (b"[]", f"valid JSON, but an array where an object belongs; {LOAD_FAILS}"),
    (b'{"Repositories": []}', f'"Repositories" is an array, not an object; {LOAD_FAILS}'),
    (b'{"Repositories": "x"}', f'"Repositories" is a string, not an object; {LOAD_FAILS}'),
    (
        b'{"Repositories": {"busybox": ["latest"]}}',
        f"repository 'busybox' is an array, not an object of tag -> image id; {LOAD_FAILS}",
    ),
    (
        b'{"Repositories": {"busybox": "4986bf8c1536"}}',
        f"repository 'busybox' is a string, not an object of tag -> image id; {LOAD_FAILS}",
    ),
    (
        b'{"Repositories": {"busybox": {"latest": 42}}}',
        f"busybox:latest is a number, not an image id; {LOAD_FAILS}",
    ),
    (
        b'{"Repositories": {"busybox": {"latest": {"id": "x"}}}}',
        f"busybox:latest is an object, not an image id; {LOAD_FAILS}",
    ),
    (
        b'{"Repositories": {}} trailing',
        "not valid JSON (invalid character 't' after top-level value)",
    ),
    (
        b'{"Repositories": {"a": {"b": NaN}}}',
        "not valid JSON (invalid character 'N' looking for beginning of value)",
    ),
]


@pytest.mark.parametrize(("raw", "why"), TAG_STORES)
def test_a_tag_store_is_valid_exactly_when_docker_could_load_it(raw: bytes, why: str) -> None:
    assert problem(raw) == why


def storage_spec(tmp: Path, driver: str) -> Path:
    spec = tmp / "spec.yaml"
    spec.write_text(spec_text(tmp, driver))
    return spec


def test_the_tag_store_is_written_as_docker_wrote_it(tmp_path: Path) -> None:
    outcome = converge(storage_spec(tmp_path, "vfs"), fake_proc(tmp_path, with_aufs=False))
    assert outcome.ok, outcome.error
    store = tmp_path / "docker" / "repositories-vfs"
    assert store.read_bytes() == b'{"Repositories":{}}'  # Go's json.Marshal: no spaces
    assert store.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", [b"{}", b'{"Repositories": null}'])
def test_a_tag_store_docker_accepts_is_left_alone(tmp_path: Path, content: bytes) -> None:
    root = tmp_path / "docker"
    root.mkdir()
    (root / "repositories-vfs").write_bytes(content)
    outcome = converge(storage_spec(tmp_path, "vfs"), fake_proc(tmp_path, with_aufs=False))
    assert outcome.ok, outcome.error
    assert (root / "repositories-vfs").read_bytes() == content


def test_a_tag_store_docker_refuses_is_an_error_and_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "docker"
    root.mkdir()
    bad = b'{"Repositories": {"busybox": ["latest"]}}'
    (root / "repositories-vfs").write_bytes(bad)
    outcome = converge(storage_spec(tmp_path, "vfs"), fake_proc(tmp_path, with_aufs=False))
    assert not outcome.ok
    assert [n.message for n in outcome.plan.errors] == [
        f"{root}/repositories-vfs: repository 'busybox' is an array, not an object of "
        f"tag -> image id; {LOAD_FAILS}; left as it is"
    ]
    assert (root / "repositories-vfs").read_bytes() == bad


CID = "c0ffee000001"

# (config.json, hostconfig.json or None, Name/Image/Driver Docker loaded, or why it did not)
CONFIGS = [
    (
        {"ID": CID, "Name": "/web", "Image": "top", "Driver": "aufs"},
        None,
        {"ID": CID, "Name": "/web", "Image": "top", "Driver": "aufs"},
    ),
    (  # Go matches keys to fields whatever their case; the last one stands
        {"id": "nope", "Id": CID, "name": "/web"},
        b"{}",
        {"ID": CID, "Name": "/web", "Image": "", "Driver": ""},
    ),
    ({"ID": CID, "Name": None}, b"null", {"ID": CID, "Name": "", "Image": "", "Driver": ""}),
    (
        {"ID": "c0ffee000002"},
        None,
        "its config.json names container c0ffee000002, not the directory it is in "
        '(Docker: "Container c0ffee000002 is stored at c0ffee000001")',
    ),
    (
        {"Name": "/web"},
        None,
        "its config.json names container with no id, not the directory it is in "
        '(Docker: "Container  is stored at c0ffee000001")',
    ),
    ({"ID": CID, "Name": 5}, None, "config.json: Name is a number, not a string"),
    ({"ID": CID, "Driver": ["vfs"]}, None, "config.json: Driver is an array, not a string"),
    (
        {"ID": CID},
        b"{",
        "hostconfig.json: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
    ),
    ({"ID": CID}, b"[]", "hostconfig.json: an array, not an object"),
    ([CID], None, "config.json: an array, not an object"),
]


@pytest.mark.parametrize(("config", "hostconfig", "loaded"), CONFIGS)
def test_a_container_loads_as_docker_1_6_loaded_it(
    config: object, hostconfig: bytes | None, loaded: dict[str, str] | str
) -> None:
    raw = json.dumps(config).encode()
    if isinstance(loaded, str):
        with pytest.raises(Unloadable) as e:
            parse_config(CID, raw, hostconfig)
        assert str(e.value) == loaded
    else:
        assert parse_config(CID, raw, hostconfig) == loaded


def test_json_decoder_reads_only_the_first_value_of_config_json() -> None:
    raw = json.dumps({"ID": CID, "Name": "/web"}).encode() + b"\n{garbage"
    assert parse_config(CID, raw, None)["Name"] == "/web"
    with pytest.raises(Unloadable) as e:
        parse_config(CID, None, None)
    assert str(e.value) == "config.json: missing"


def make_container(root: Path, cid: str, name: str, driver: str | None) -> None:
    (root / "containers" / cid).mkdir(parents=True)
    config = {"ID": cid, "Name": f"/{name}", "Image": "top"}
    if driver is not None:
        config["Driver"] = driver
    (root / "containers" / cid / "config.json").write_text(json.dumps(config))
    if driver:
        (root / driver / ("diff" if driver == "aufs" else "dir") / cid).mkdir(parents=True)


def edges(db: Path) -> list[tuple[str, str, str | None]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return sorted(conn.execute("SELECT name, entity_id, parent_id FROM edge").fetchall())


def test_only_containers_docker_loads_are_named(tmp_path: Path) -> None:
    root = tmp_path / "docker"
    make_container(root, "aaaa00000001", "web", "vfs")
    make_container(root, "aaaa00000002", "old", "aufs")  # another driver's
    make_container(root, "aaaa00000003", "legacy", None)  # no driver: aufs to Docker
    make_container(root, "aaaa00000004", "moved", "vfs")
    config = root / "containers/aaaa00000004/config.json"
    config.write_text(config.read_text().replace("aaaa00000004", "aaaa00000009"))
    outcome = converge(storage_spec(tmp_path, "vfs"), fake_proc(tmp_path, with_aufs=True))
    assert outcome.ok, outcome.error
    assert edges(root / "linkgraph.db") == [("/", "0", None), ("web", "aaaa00000001", "0")]
    assert [n.message for n in outcome.plan.notes if n.reconciler == "containers"] == [
        "container aaaa00000002 is left alone: created with the aufs graph driver, not vfs; "
        "Docker loads only the containers of its driver",
        "container aaaa00000003 is left alone: its config.json names no graph driver, which "
        "Docker took for aufs, not vfs; Docker loads only the containers of its driver",
        "container aaaa00000004 is left alone: its config.json names container aaaa00000009, "
        'not the directory it is in (Docker: "Container aaaa00000009 is stored at '
        'aaaa00000004")',
    ]
    # Under aufs, the one without a driver is loaded and named; the vfs one no longer is.
    spec = tmp_path / "aufs.yaml"
    spec.write_text(spec_text(tmp_path, "aufs"))
    (root / "aufs/diff/aaaa00000003").mkdir(parents=True)
    outcome = converge(spec, fake_proc(tmp_path, with_aufs=True))
    assert outcome.ok, outcome.error
    assert ("legacy", "aaaa00000003", "0") in edges(root / "linkgraph.db")


def docker_graph(path: Path, root_entity: bool = True) -> None:
    """A link graph as Docker 1.x left it: /webapp, /db, and the link /webapp/db."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE entity (id text NOT NULL PRIMARY KEY)")
        db.execute(
            "CREATE TABLE edge (entity_id text NOT NULL, parent_id text NULL, name text NOT NULL)"
        )
        db.execute('CREATE UNIQUE INDEX "name_parent_ix" ON "edge" (parent_id, name)')
        rows = [("0", None, "/"), ("bbbb00000001", "0", "webapp"), ("bbbb00000002", "0", "db")]
        rows.append(("bbbb00000002", "bbbb00000001", "db"))  # the link: /webapp/db
        db.executemany("INSERT INTO edge (entity_id, parent_id, name) VALUES (?, ?, ?)", rows)
        ids = ["bbbb00000001", "bbbb00000002"] + (["0"] if root_entity else [])
        db.executemany("INSERT INTO entity (id) VALUES (?)", [(i,) for i in ids])
        db.commit()


def test_a_link_graph_without_its_root_entity_gets_it_back_and_keeps_every_link(
    tmp_path: Path,
) -> None:
    root = tmp_path / "docker"
    make_container(root, "bbbb00000001", "webapp", "vfs")
    make_container(root, "bbbb00000002", "db", "vfs")
    make_container(root, "bbbb00000003", "cache", "vfs")
    db = root / "linkgraph.db"
    docker_graph(db, root_entity=False)
    before = edges(db)
    spec = storage_spec(tmp_path, "vfs")
    outcome = converge(spec, fake_proc(tmp_path, with_aufs=False))
    assert outcome.ok, outcome.error
    assert not list(root.glob("linkgraph.db.corrupt-*"))
    assert edges(db) == sorted([*before, ("cache", "bbbb00000003", "0")])
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT 1 FROM entity WHERE id = '0'").fetchone() == (1,)
    assert [n.message for n in outcome.plan.notes if n.reconciler == "graphdb"] == [
        f"{db} lacks the root entity 0: put back as Docker did at every start; its 2 names "
        "and 1 links are kept"
    ]
    assert converge(spec, fake_proc(tmp_path, with_aufs=False), dry_run=True).plan.changes == []


def test_inspect_sees_what_docker_s_start_up_would_restore(tmp_path: Path) -> None:
    docker_graph(tmp_path / "a.db", root_entity=False)
    problem_, unusable, found = inspect((tmp_path / "a.db").read_bytes())
    assert (problem_, unusable) == (None, None)
    assert found.restore == ("the root entity 0",)
    assert found.names == {"/webapp": "bbbb00000001", "/db": "bbbb00000002"}
    assert (found.linked, found.links) == (("bbbb00000001", "bbbb00000002"), 1)
    docker_graph(tmp_path / "b.db")
    assert inspect((tmp_path / "b.db").read_bytes())[2].restore == ()
    with contextlib.closing(sqlite3.connect(tmp_path / "c.db")) as conn:
        conn.execute("CREATE TABLE other (x)")
        conn.commit()
    assert inspect((tmp_path / "c.db").read_bytes())[2].restore == (
        "the entity table",
        "the edge table",
    )


def test_a_link_graph_loop_is_walked_once(tmp_path: Path) -> None:
    docker_graph(tmp_path / "a.db")
    with contextlib.closing(sqlite3.connect(tmp_path / "a.db")) as conn:
        conn.execute(
            "INSERT INTO edge (entity_id, parent_id, name) VALUES ('bbbb00000001', "
            "'bbbb00000002', 'back')"
        )
        conn.commit()
    found = inspect((tmp_path / "a.db").read_bytes())[2]
    assert (found.linked, found.links) == (("bbbb00000001", "bbbb00000002"), 2)


def test_only_a_database_failing_integrity_check_is_moved_aside(tmp_path: Path) -> None:
    assert inspect(b"SQLite format 3\x00" + b"\xff" * 200)[0] is not None
    assert inspect(b"not a database at all, but long enough to be read as one" * 4)[0] is not None
    docker_graph(tmp_path / "a.db", root_entity=False)
    assert inspect((tmp_path / "a.db").read_bytes())[0] is None


def test_a_sound_database_docker_could_not_open_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "docker"
    root.mkdir()
    db = root / "linkgraph.db"
    docker_graph(db, root_entity=False)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "CREATE TRIGGER no BEFORE INSERT ON entity BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
        conn.commit()
    before = db.read_bytes()
    outcome = converge(storage_spec(tmp_path, "vfs"), fake_proc(tmp_path, with_aufs=False))
    assert not outcome.ok
    assert [n.message for n in outcome.plan.errors] == [
        f"{db} passes integrity_check, but Docker's own start-up fails on it (sqlite: no); "
        "left as it is: move it aside by hand to start anew"
    ]
    assert db.read_bytes() == before
    assert not list(root.glob("linkgraph.db.corrupt-*"))
