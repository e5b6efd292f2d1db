"""dockyard claims it never deletes anything but a stale pid file, and that the plan lists every
change. Building the link graph deletes, unannounced, two files it did not create:
`<root>/.linkgraph.db.new` (graphdb's `_building` unlinks it as "the leftover of a crash",
whatever it holds, whoever made it), and `<root>/.linkgraph.db.new-journal` (sqlite takes it
for the hot journal of the new, empty database and deletes it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile_world import make_world


@pytest.mark.parametrize("name", [".linkgraph.db.new", ".linkgraph.db.new-journal"])
def test_a_file_dockyard_did_not_create_is_deleted(tmp_path: Path, name: str) -> None:
    world = make_world(tmp_path)
    world.root.mkdir(exist_ok=True)
    theirs = world.root / name
    theirs.write_text("a file someone keeps here\n")
    plan = world.run(dry_run=True).plan
    assert not any(name in c.name for c in plan.changes)  # the plan does not mention it
    outcome = world.run()
    assert outcome.ok, outcome.error
    assert theirs.exists(), f"{theirs} was deleted"
