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
from dataclasses import dataclass
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


class Removable(Files):
    """The toy with a `down`: each of its files goes."""

    def teardown(self, spec: Spec, seen: Any) -> tuple[list[Change], list[Any]]:
        have = seen[type(self).observation].files
        changes = [
            Change(self.name, "file", n, "delete", {"c": have[n]}, None, "owned")
            for n in self.want
            if n in have
        ]
        return changes, []


def test_down_names_a_concern_undone_for_the_one_it_comes_after(
    world: tuple[Spec, Host, Path],
) -> None:
    """`down` runs last concern first: when the first one's removal fails, the removals
    already made for those after it are put back, and they are named."""
    spec, host, files = world
    (files / "base").write_text("b")

    @dataclass(frozen=True)
    class BaseObserved:
        files: dict[str, str]

    class Base(Removable):
        name = "base"
        after = ()
        observation = BaseObserved

        def observe(self, spec: Spec, host: Host) -> Any:
            return BaseObserved({p.name: p.read_text() for p in self.where.iterdir()})

    class Top(Removable):
        name = "top"
        after = ("base",)

    ordered = engine.order([Base(files, {"base": "b"}, fail_on=1), Top(files, {"keep": "old"})])
    the_plan = engine.plan(ordered, spec, engine.observe(ordered, spec, host), teardown=True)
    assert [c.reconciler for c in the_plan.changes] == ["top", "base"]
    outcome = engine.apply(the_plan, ordered, spec, host, teardown=True)
    assert (files / "keep").read_text() == "old"  # put back
    assert outcome.failed["top"] == "top: undone, it comes after base, which did not converge"
