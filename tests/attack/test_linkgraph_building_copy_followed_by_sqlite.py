"""The link graph is written like every file: built in memory (sqlite never gets a path of the
root), then put in place through a temporary file and a rename. A symlink planted at the link
graph's name while its temporary file is being written (the window the first version had at
`.linkgraph.db.new`, which sqlite then followed) must make the write refuse, never create or
rewrite a database outside the root. Found by a review of the first version."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from dockyard.reconcilers import graphdb
from dockyard.state import safepath
from tests.attack.attackers import SYMLINK_PLANTER, Attacker, decoy_changed, fresh
from tests.hostile_world import make_world, snapshot


def _plant_when_written(monkeypatch, target: Path) -> None:
    """The attacker, exactly in the window: while dockyard writes the link graph's temporary
    file, a symlink appears at the link graph's name."""
    real = safepath._temporary

    def temporary(dirfd: int, name: str, mode: int) -> tuple[str, int]:
        made = real(dirfd, name, mode)
        if name == graphdb.DB:
            with contextlib.suppress(FileExistsError):
                os.symlink(target, name, dir_fd=dirfd)
        return made

    monkeypatch.setattr(safepath, "_temporary", temporary)


def test_sqlite_creates_a_file_outside_the_root(tmp_path: Path, monkeypatch) -> None:
    world = make_world(tmp_path)
    created = world.decoy / "new.db"
    _plant_when_written(monkeypatch, created)
    before = snapshot(world.decoy)
    with contextlib.suppress(Exception):
        world.run()
    assert not created.exists(), "sqlite created a database outside the root"
    assert decoy_changed(before, snapshot(world.decoy)) == []


def test_sqlite_rewrites_a_database_outside_the_root(tmp_path: Path, monkeypatch) -> None:
    world = make_world(tmp_path)
    app = world.decoy / "app.db"
    with contextlib.closing(sqlite3.connect(app)) as db:
        db.execute("CREATE TABLE t (x)")
        db.commit()
    _plant_when_written(monkeypatch, app)
    before = snapshot(world.decoy)
    with contextlib.suppress(Exception):
        world.run()
    with contextlib.closing(sqlite3.connect(app)) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"t"}, f"Docker's link graph was written into {app}: {tables}"
    assert decoy_changed(before, snapshot(world.decoy)) == []


def test_a_real_attacker_wins_the_race(tmp_path: Path) -> None:
    """Raced for real by another process watching the root with inotify."""
    for n in range(20):
        world = make_world(fresh(tmp_path, n))
        world.root.mkdir(exist_ok=True)
        created = world.decoy / "new.db"
        before = snapshot(world.decoy)
        attacker = Attacker(SYMLINK_PLANTER, world.root, graphdb.DB, created)
        with attacker, contextlib.suppress(Exception):
            world.run()
        assert decoy_changed(before, snapshot(world.decoy)) == [], f"attempt {n + 1}"
