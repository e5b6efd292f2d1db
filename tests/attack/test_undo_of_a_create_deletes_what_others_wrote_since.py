"""The undo of a file dockyard created in this run is a plain unlink of whatever is at that name
by then (graphdb: `tree.unlink(DB)`; likewise dns, tagstore, exec), never checked against what
dockyard wrote -- unlike the pid file, which is removed only if its content is still what was
read. When a Docker daemon starts during the run and registers a container in the new
linkgraph.db, and the run's verification then fails (here: a second new container has no entry
yet), the
undo deletes the daemon's link graph: data dockyard did not write, and not a stale pid file."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

from dockyard.reconcilers.graphdb import GraphDb
from tests.hostile_world import make_world


def test_undo_does_not_delete_a_link_graph_someone_else_wrote_to(
    tmp_path: Path, monkeypatch
) -> None:
    world = make_world(tmp_path)
    db = world.root / "linkgraph.db"
    real = GraphDb.apply

    def apply(self, change, host):
        real(self, change, host)
        if change.action == "create":  # meanwhile, dockerd starts and creates a container
            for cid, name in (("beef00000001", "/late"), ("beef00000002", "/later")):
                late = world.root / "containers" / cid
                late.mkdir()
                config = {"ID": cid, "Name": name, "Image": "x", "Driver": "vfs"}
                (late / "config.json").write_text(json.dumps(config))
            with contextlib.closing(sqlite3.connect(db)) as conn:
                conn.execute("INSERT INTO entity (id) VALUES ('beef00000001')")
                conn.execute(
                    "INSERT INTO edge (entity_id, parent_id, name) "
                    "VALUES ('beef00000001', '0', 'late')"
                )
                conn.commit()

    monkeypatch.setattr(GraphDb, "apply", apply)
    outcome = world.run()
    assert "graphdb" in outcome.failed
    assert db.exists(), f"the undo deleted {db}, which dockerd had written to"
