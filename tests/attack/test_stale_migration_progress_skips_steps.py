"""The migration journal is checked before it is carried out (only steps dockyard plans, only
ids under graph/ and containers/), but its progress record `.dockyard-migration.progress` is
never looked at when observing: `run` writes a fresh journal for the steps it planned, then
reads the progress file found on disk and skips every step whose index is listed there.

A progress file without a journal -- planted, or left by dockyard itself when it is killed
between `tree.unlink(JOURNAL)` and `tree.unlink(PROGRESS)` at the end of a migration -- makes
the next migration skip steps the plan announced: image layers are left in graph/ while the
layers and containers above them are moved, an irreversible half-migration; the run then fails,
and deletes the progress file it did not write."""

from __future__ import annotations

from pathlib import Path

from dockyard.reconcilers.migration import PROGRESS
from tests.hostile_world import make_world


def test_a_progress_file_without_a_journal_does_not_skip_planned_steps(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    (world.root / PROGRESS).write_text("0\n1\n2\n")  # repositories, base0000, fork0000
    planned = [c for c in world.run(dry_run=True).plan.changes if c.reconciler == "migration"]
    assert len(planned) == 11  # 1 + 4 images + 2 containers x (init, rw, driver)
    assert not any("progress" in n.message for n in world.run(dry_run=True).plan.notes)
    outcome = world.run()
    left = sorted(str(p.relative_to(world.root)) for p in world.root.glob("graph/*/layer"))
    assert left == [], f"planned moves not carried out: {left}; run: {outcome.error}"
    assert (world.root / "repositories-vfs").exists()
    assert outcome.ok, outcome.error
