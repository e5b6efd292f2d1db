"""README: "A ledger that cannot be used (unparsable, a symlink, a FIFO, too large) is reported,
the run goes on as with no ledger". Ledger.load catches ValueError, KeyError, TypeError and
UnicodeDecodeError from json.loads, but not RecursionError: a ledger.json of 100,000 `[` (well
under its 64 MiB cap) makes every plan, apply, down and watch pass end in an internal error
until someone removes it by hand."""

from __future__ import annotations

from pathlib import Path

from dockyard.state.host import LEDGER
from tests.hostile_world import make_world


def test_a_deeply_nested_ledger_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.state.mkdir()
    (world.state / LEDGER).write_text("[" * 100_000)
    outcome = world.run()  # raises RecursionError
    assert outcome.ok, outcome.error
    assert any("ledger" in n.message and "damaged" in n.message for n in outcome.plan.notes)
    assert list(world.state.glob(f"{LEDGER}.corrupt-*"))
