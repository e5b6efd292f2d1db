"""Hostile filesystems, one example each: nothing outside the root is followed, changed or
moved in, nothing that is not dockyard's is deleted, and undo puts back exactly what was there."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from dockyard import engine
from dockyard.change import Change
from dockyard.reconcilers import iptables
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.dns import Dns
from dockyard.reconcilers.iptables import backends
from dockyard.reconcilers.pidfile import PidFile, PidFileObserved
from dockyard.spec import load
from dockyard.state.host import Host
from dockyard.state.safepath import Unsafe
from tests.hostile_world import World, make_world, reconcilers, snapshot


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def fails_naming(world: World, path: Path, found: str) -> str:
    """Run apply; it must fail, name `path` and what was found there, and leave the decoy."""
    before = snapshot(world.decoy)
    outcome = world.run()
    assert outcome.error is not None
    assert f"{path} is {found}" in outcome.error
    assert snapshot(world.decoy) == before
    return outcome.error


@pytest.mark.parametrize("where", ["vfs", "vfs/dir"])
def test_a_symlinked_driver_directory_gets_nothing_created_or_moved_out(
    world: World, where: str
) -> None:
    (world.root / where).parent.mkdir(parents=True, exist_ok=True)
    target = world.decoy / "vfs" if where == "vfs" else world.decoy / "vfs" / "dir"
    (world.root / where).symlink_to(target)
    layers = snapshot(world.root / "graph")
    fails_naming(world, world.root / where, f"a symlink (to {target})")
    # No layer left the root (the mode of graph/ itself is the directories' concern).
    assert {k: v for k, v in snapshot(world.root / "graph").items() if k} == {
        k: v for k, v in layers.items() if k
    }


@pytest.mark.parametrize("where", ["graph/top00000", "containers/c0ffee000001"])
def test_a_symlinked_image_or_container_brings_nothing_in(world: World, where: str) -> None:
    shutil.rmtree(world.root / where)
    outside = world.decoy / ("graph/feed0000" if where.startswith("graph") else "containers")
    (world.root / where).symlink_to(outside)
    fails_naming(world, world.root / where, f"a symlink (to {outside})")
    assert not (world.root / "vfs" / "dir" / "feed0000").exists()
    assert not list(world.root.rglob("secret")) or all(
        p.read_text() != "layer from outside\n" for p in world.root.rglob("secret")
    )


@pytest.mark.parametrize(
    "steps",
    [
        [["rename", "/etc/passwd", "vfs/dir/x"]],
        [["rename", "graph/top00000/layer", "../../escaped"]],
        [["write", "/tmp/owned", "x"]],
        [["mkdir", "aufs/mnt/../../../x"]],
        [["init", "vfs/dir/../../../x"]],
        [[]],
        [["rename", "x"]],
        [["mkdir", 5]],
        [["chmod", "graph", "0777"]],
        "not a list",
    ],
)
def test_a_journal_dockyard_did_not_write_is_set_aside_never_executed(
    world: World, steps: object
) -> None:
    journal = world.root / ".dockyard-migration.journal"
    journal.write_text(json.dumps({"steps": steps}))
    outcome = world.run()
    assert outcome.ok, outcome.error
    assert not journal.exists()
    assert json.loads((world.root / ".dockyard-migration.journal.rejected-1").read_text()) == {
        "steps": steps
    }
    warning = next(n.message for n in outcome.plan.notes if "is rejected" in n.message)
    assert warning.startswith(f"{journal} is rejected (")
    assert not Path("/tmp/owned").exists() and not (world.base / "escaped").exists()
    # The migration is planned afresh from what is on disk.
    assert (world.root / "vfs" / "dir" / "top00000").is_dir()
    assert world.run(dry_run=True).plan.changes == []


def test_a_symlinked_link_graph_is_not_written(world: World) -> None:
    (world.root).mkdir(exist_ok=True)
    (world.root / "linkgraph.db").symlink_to(world.decoy / "db")
    fails_naming(world, world.root / "linkgraph.db", f"a symlink (to {world.decoy}/db)")


def test_a_symlinked_dockerinit_is_not_chmodded(world: World) -> None:
    (world.root / "init").mkdir(parents=True)
    (world.root / "init" / "dockerinit-1.2.0").symlink_to(world.decoy / "init" / "binary")
    fails_naming(
        world,
        world.root / "init" / "dockerinit-1.2.0",
        f"a symlink (to {world.decoy}/init/binary)",
    )
    assert (world.decoy / "init" / "binary").stat().st_mode & 0o777 == 0o755


def test_a_hard_linked_resolv_conf_is_not_rewritten(world: World) -> None:
    world.root.mkdir(exist_ok=True)
    os.link(world.decoy / "precious", world.root / "resolv.conf")
    fails_naming(world, world.root / "resolv.conf", "a hard link (2 names for one file)")


def test_a_symlinked_iptables_stamp_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "iptables.written").symlink_to(tmp_path / "created-by-the-attacker")
    with pytest.raises(Unsafe):
        backends.touch(tmp_path / iptables.WRITTEN)
    assert not (tmp_path / "created-by-the-attacker").exists()
    assert not backends._untouched_since(tmp_path / iptables.WRITTEN, 1e12, 1 << 62)


@pytest.mark.parametrize("other", ["hosts", "fifo", "zero", "urandom", "a million digits"])
def test_a_pidfile_that_is_not_a_pid_file_is_reported_and_left_alone(
    tmp_path: Path, other: str
) -> None:
    path = {
        "hosts": tmp_path / "etc" / "hosts",
        "fifo": tmp_path / "run" / "fifo",
        "zero": Path("/dev/zero"),
        "urandom": Path("/dev/urandom"),
        "a million digits": tmp_path / "run" / "digits",
    }[other]
    world = make_world(tmp_path, legacy=False, pidfile=str(path))
    if other == "fifo":
        os.mkfifo(path)
    if other == "a million digits":
        path.write_text("1" * 1_000_000)
    if other == "hosts":
        path.write_text("127.0.0.1 localhost\n")
    before = path.read_text() if path.parent == tmp_path / "etc" else None
    outcome = world.run()
    assert outcome.ok, outcome.error
    warnings = [n.message for n in outcome.plan.notes if n.reconciler == "pidfile"]
    assert len(warnings) == 1 and warnings[0].startswith(f"{path} ")
    assert warnings[0].endswith("; left alone")
    assert path.exists()
    if before is not None:
        assert path.read_text() == before


@pytest.mark.parametrize("content", ["²\n", "١٢٣\n", " 123\n", "123 456\n", "0\n", "-5\n"])
def test_only_ascii_decimal_pids_count(tmp_path: Path, content: str) -> None:
    world = make_world(tmp_path, legacy=False)
    world.pidfile.write_text(content)
    assert world.run().ok
    assert world.pidfile.read_text() == content


def test_undo_of_a_removed_pid_file_puts_back_content_mode_and_owner(tmp_path: Path) -> None:
    pidfile = tmp_path / "docker.pid"
    pidfile.write_bytes(b"4194303\n")
    pidfile.chmod(0o600)
    os.chown(pidfile, 1, 2)
    world = make_world(tmp_path, legacy=False, pidfile=str(pidfile))
    spec = load(world.spec)
    host = Host.for_spec(spec)
    reconciler = PidFile()
    seen = Seen()
    seen.add("pidfile", reconciler.observe(spec, host))
    assert seen[PidFileObserved].pid == 4194303 and not seen[PidFileObserved].alive
    (change,) = reconciler.diff(spec, seen)
    reconciler.apply(change, host)
    assert not pidfile.exists()
    undo = change.undo()
    assert undo is not None
    reconciler.apply(undo, host)
    st = pidfile.stat()
    assert (pidfile.read_bytes(), st.st_mode & 0o777, st.st_uid, st.st_gid) == (
        b"4194303\n",
        0o600,
        1,
        2,
    )


def test_undo_of_a_rewritten_resolv_conf_puts_back_content_mode_and_owner(
    world: World,
) -> None:
    world.root.mkdir(exist_ok=True)
    old = "nameserver 192.0.2.99\n" * 2000  # long: an undo must not keep only a prefix
    (world.root / "resolv.conf").write_text(old)
    (world.root / "resolv.conf").chmod(0o640)
    os.chown(world.root / "resolv.conf", 3, 4)
    spec = load(world.spec)
    host = Host.for_spec(spec)
    dns = Dns(force=True)
    seen = Seen()
    seen.add("dns", dns.observe(spec, host))
    (change,) = dns.diff(spec, seen)
    dns.apply(change, host)
    assert (world.root / "resolv.conf").read_text() != old
    undo: Change | None = change.undo()
    assert undo is not None
    dns.apply(undo, host)
    st = (world.root / "resolv.conf").stat()
    assert ((world.root / "resolv.conf").read_text(), st.st_mode & 0o777) == (old, 0o640)
    assert (st.st_uid, st.st_gid) == (3, 4)


def test_a_damaged_ledger_is_moved_aside_and_the_run_converges(world: World) -> None:
    world.state.mkdir()
    (world.state / "ledger.json").write_text("{ damaged")
    outcome = world.run()
    assert outcome.ok, outcome.error
    notes = [n.message for n in outcome.plan.notes if n.reconciler == "ledger"]
    assert notes and "is damaged" in notes[0]
    assert (world.state / "ledger.json.corrupt-1").read_text() == "{ damaged"
    ledger = json.loads((world.state / "ledger.json").read_text())
    assert ledger["owned"]["directories"]  # what this run created is recorded
    assert world.run(dry_run=True).plan.changes == []


def test_a_damaged_legacy_graph_is_reported_per_layer_and_the_rest_migrates(
    world: World,
) -> None:
    graph = world.root / "graph"
    for image, meta in {
        "loopa000": {"parent": "loopb000"},
        "loopb000": {"parent": "loopa000"},
        "listpar0": {"parent": ["base0000"]},
        "slashp00": {"parent": "../../etc"},
    }.items():
        (graph / image / "layer").mkdir(parents=True)
        (graph / image / "json").write_text(json.dumps(meta))
    (world.root / "containers" / "objimage00" / "rw").mkdir(parents=True)
    (world.root / "containers" / "objimage00" / "config.json").write_text(
        json.dumps({"Image": {"id": "base0000"}})
    )
    outcome = world.run()
    assert outcome.ok, outcome.error
    warnings = {n.message for n in outcome.plan.notes if n.severity == "warning"}
    assert (
        "graph/loopa000: its parents form a loop (loopa000 -> loopb000 -> loopa000); left in place"
        in warnings
    )
    assert (
        "graph/listpar0: json: its parent \"['base0000']\" is not an id; left in place" in warnings
    )
    assert "graph/slashp00: json: its parent '../../etc' is not an id; left in place" in warnings
    assert any(w.startswith("containers/objimage00/rw: config.json: its image") for w in warnings)
    assert (graph / "loopa000" / "layer").is_dir()
    assert (world.root / "containers" / "objimage00" / "rw").is_dir()
    assert (world.root / "vfs" / "dir" / "top00000").is_dir()  # the sound layers moved


def test_tags_migrate_with_containers_alone_and_the_tag_store_waits_for_them(
    world: World,
) -> None:
    """Found by the fuzzer: with graph/ emptied, the migration still moves `repositories`
    (containers remain), so the tag store must not be created empty in its way."""
    shutil.rmtree(world.root / "graph")
    (world.root / "graph").mkdir()
    tags = (world.root / "repositories").read_text()
    outcome = world.run()
    assert outcome.ok, outcome.error
    assert (world.root / "repositories-vfs").read_text() == tags


def test_undo_of_names_registered_in_the_link_graph_removes_exactly_them(world: World) -> None:
    assert world.run().ok
    cid = "c0ffee000003"
    (world.root / "containers" / cid).mkdir()
    (world.root / "containers" / cid / "config.json").write_text(
        f'{{"ID": "{cid}", "Name": "/cache", "Driver": "vfs"}}'
    )
    (world.root / "vfs" / "dir" / cid).mkdir()

    def edges() -> list[tuple[str, str]]:
        with contextlib.closing(sqlite3.connect(world.root / "linkgraph.db")) as db:
            return sorted(db.execute("SELECT name, entity_id FROM edge").fetchall())

    before = edges()
    spec = load(world.spec)
    host = Host.for_spec(spec, proc=world.proc)
    recs = engine.order(reconcilers())
    (change,) = [c for c in engine.plan(recs, spec, engine.observe(recs, spec, host)).changes]
    assert change.reconciler == "graphdb" and change.after == {"names": {"/cache": cid}}
    graphdb = next(r for r in recs if r.name == "graphdb")
    graphdb.apply(change, host)
    assert edges() == sorted([*before, ("cache", cid)])
    undo = change.undo()
    assert undo is not None
    graphdb.apply(undo, host)
    assert edges() == before
