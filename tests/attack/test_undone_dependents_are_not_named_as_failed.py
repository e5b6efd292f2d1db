"""Failure isolation says which concerns did not converge (README, "How a run works": "its
error names every reconciler that did not converge"; `-o json` lists them under `failed`).
Two ways a concern is left out of that list although it did not converge:

- a concern that fails verification has its changes undone together with those of every
  concern after it; the ones after it were applied and are now undone, yet only the first is
  named, so the report reads as if they had converged;
- a concern that cannot be observed blocks the concerns after it from being observed at all;
  they are never diffed nor applied, and are not named either.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dockyard import engine
from dockyard.change import Change
from dockyard.reconcilers.directories import Directories
from dockyard.spec import Spec
from dockyard.state.host import Host
from tests.unit import test_engine
from tests.unit.test_engine import Files, run

world = test_engine.world  # the engine tests' fixture: a spec, its host, a directory of files


def test_a_concern_undone_for_another_is_named(world: tuple[Spec, Host, Path]) -> None:
    spec, host, files = world

    class Stubborn(Directories):
        """Something else on the host puts tmp/ back to 0755 as soon as it is made."""

        def apply(self, change: Change, host: Host) -> None:
            super().apply(change, host)
            if change.name.endswith("/tmp") and change.action == "create":
                os.chmod(change.name, 0o755)

    outcome = run(spec, host, [Stubborn(), Files(files, {"keep": "new"})])
    assert "file keep" in [c.resource for c in outcome.rolled_back]
    assert (files / "keep").read_text() == "old"
    assert outcome.failed["files"] == (
        "files: undone, it comes after directories, which did not converge"
    )
    assert outcome.error is not None and outcome.error.endswith(outcome.failed["files"])


def test_a_concern_never_observed_for_another_is_named(world: tuple[Spec, Host, Path]) -> None:
    spec, host, files = world

    class Unreadable(Directories):
        def observe(self, spec: Spec, host: Host) -> Any:
            raise PermissionError(13, "Permission denied", spec.root)

    outcome = run(spec, host, [Unreadable(), Files(files, {"keep": "new"})])
    assert (files / "keep").read_text() == "old"
    assert set(outcome.failed) == {"directories", "files"}
    assert outcome.failed["files"] == (
        "files: skipped, it comes after directories, which could not be observed"
    )


def test_a_concern_that_converged_is_not_named(world: tuple[Spec, Host, Path]) -> None:
    spec, host, files = world
    outcome = run(spec, host, [Directories(), Files(files, {"keep": "new"})])
    assert outcome.failed == {} and outcome.error is None
    assert engine.dependents(["directories"], engine.order([Directories()])) == {"directories"}
