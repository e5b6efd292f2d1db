"""graphdb's apply lets sqlite3 errors (neither OSError nor DockyardError) escape: the run ends
in an exception (`reconcile: internal error`, a crash report), every reconciler's changes are
rolled back instead of only graphdb's, and the offending path is never named. The fuzz test's
property ("never end in a traceback, and either converge or name the offending path") fails
for two things planted in the root that it does not try:

- a dangling symlink at `.linkgraph.db.new-journal` (sqlite opens its journal O_NOFOLLOW and
  fails with "unable to open database file");
- a linkgraph.db that passes integrity_check but has a trigger that aborts an insert."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from dockyard.reconcilers import graphdb
from tests.hostile_world import make_world


def test_a_dangling_journal_symlink_is_none_of_dockyards_business(tmp_path: Path) -> None:
    """sqlite works in memory now: names beside the link graph are never opened."""
    world = make_world(tmp_path)
    world.root.mkdir(exist_ok=True)
    planted = world.root / ".linkgraph.db.new-journal"
    planted.symlink_to(tmp_path / "nowhere")
    outcome = world.run()
    assert outcome.ok, outcome.error
    assert planted.is_symlink() and not (tmp_path / "nowhere").exists()


def test_a_link_graph_with_an_aborting_trigger_is_an_internal_error(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.root.mkdir(exist_ok=True)
    with contextlib.closing(sqlite3.connect(world.root / graphdb.DB)) as db:
        for statement in graphdb.SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO entity (id) VALUES ('0')")
        db.execute("INSERT INTO edge (entity_id, name) VALUES ('0', '/')")
        db.execute("CREATE TRIGGER no BEFORE INSERT ON edge BEGIN SELECT RAISE(ABORT, 'no'); END")
        db.commit()
    outcome = world.run()  # raises sqlite3.IntegrityError
    assert "linkgraph" in (outcome.error or "")


def test_the_command_line_reports_an_internal_error(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.root.mkdir(exist_ok=True)
    (world.root / ".linkgraph.db.new-journal").symlink_to(tmp_path / "nowhere")
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where the crash report goes
    run = subprocess.run(
        [sys.executable, "-m", "dockyard", "apply", str(world.spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "internal error" not in run.stderr, run.stderr
