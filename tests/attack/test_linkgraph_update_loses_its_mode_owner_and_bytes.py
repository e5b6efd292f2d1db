"""Registering names in an existing `<root>/linkgraph.db` wrote the database anew 0600 and owned
by root, whatever its mode and owner were (a change the plan never showed), and the undo
deleted the names from that copy: the file came back neither with its bytes, nor its mode,
nor its owner. Issue 11: "Undo restores exactly what was there (whole content, mode, owner)"."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard import engine
from dockyard.spec import load
from dockyard.state.host import Host
from tests.hostile_world import World, make_world, reconcilers


def looks(db: Path) -> tuple[bytes, int, int, int]:
    st = db.stat()
    return db.read_bytes(), st.st_mode & 0o777, st.st_uid, st.st_gid


def new_container(world: World, cid: str) -> None:
    (world.root / "containers" / cid).mkdir()
    (world.root / "containers" / cid / "config.json").write_text(
        f'{{"ID": "{cid}", "Name": "/cache", "Driver": "vfs"}}'
    )
    (world.root / "vfs" / "dir" / cid).mkdir()


def test_registering_names_keeps_mode_and_owner_and_the_undo_puts_back_every_byte(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path)
    assert world.run().ok
    db = world.root / "linkgraph.db"
    os.chmod(db, 0o644)
    os.chown(db, 3, 4)
    before = looks(db)
    new_container(world, "c0ffee000003")
    spec = load(world.spec)
    host = Host.for_spec(spec, proc=world.proc)
    recs = engine.order(reconcilers())
    (change,) = engine.plan(recs, spec, engine.observe(recs, spec, host)).changes
    graphdb = next(r for r in recs if r.name == "graphdb")
    graphdb.apply(change, host)
    assert looks(db)[0] != before[0]
    assert looks(db)[1:] == (0o644, 3, 4)  # the plan changes names, not mode or owner
    undo = change.undo()
    assert undo is not None
    graphdb.apply(undo, host)
    assert looks(db) == before
