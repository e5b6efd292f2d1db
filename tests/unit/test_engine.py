"""The engine without a kernel: ordering, blocking errors, rollback and verification."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dockyard import engine
from dockyard.change import Change, Note
from dockyard.errors import DockyardError, PartiallyApplied
from dockyard.reconcilers import default_set
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.directories import Directories
from dockyard.spec import Spec, load_text
from dockyard.state.host import Host


@dataclass(frozen=True)
class FilesObserved:
    files: dict[str, str]


class Files:
    """A toy reconciler: files with given content in a directory; can be told to fail."""

    name: ClassVar[str] = "files"
    after: ClassVar[tuple[str, ...]] = ("directories",)
    observation: ClassVar[type] = FilesObserved

    def __init__(
        self, where: Path, want: dict[str, str], fail_on: int = 0, ignore: bool = False
    ) -> None:
        self.where, self.want, self.fail_on, self.ignore = where, want, fail_on, ignore
        self.calls = 0

    def observe(self, spec: Spec, host: Host) -> FilesObserved:
        return FilesObserved({p.name: p.read_text() for p in self.where.iterdir()})

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        have = seen[FilesObserved].files
        out = []
        for name, content in self.want.items():
            if name not in have:
                out.append(Change(self.name, "file", name, "create", None, {"c": content}, "new"))
            elif have[name] != content:
                out.append(
                    Change(
                        self.name, "file", name, "update", {"c": have[name]}, {"c": content}, "x"
                    )
                )
        return out

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        return []

    def apply(self, change: Change, host: Host) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            raise OSError(28, "No space left on device", str(self.where / change.name))
        if self.ignore:
            return
        if change.action == "delete":
            (self.where / change.name).unlink()
        else:
            (self.where / change.name).write_text((change.after or {})["c"])


def _named(name: str, after: tuple[str, ...]) -> Any:
    return type(name, (), {"name": name, "after": after})()


def test_order_follows_dependencies_then_given_order() -> None:
    recs = [_named("c", ("a",)), _named("b", ()), _named("a", ()), _named("d", ("c", "b"))]
    assert [r.name for r in engine.order(recs)] == ["b", "a", "c", "d"]


def test_order_ignores_dependencies_outside_the_set() -> None:
    assert [r.name for r in engine.order([_named("x", ("missing",))])] == ["x"]


def test_order_rejects_a_cycle() -> None:
    with pytest.raises(DockyardError, match="cycle"):
        engine.order([_named("a", ("b",)), _named("b", ("a",))])


def test_default_order_puts_every_dependency_first() -> None:
    ordered = engine.order(default_set())
    names = [r.name for r in ordered]
    assert names[0] == "preflight"
    assert len(names) == len(set(names))
    for position, r in enumerate(ordered):
        assert all(names.index(dep) < position for dep in r.after), r.name
    assert names.index("bridge") < names.index("iptables")
    assert names.index("storage") < names.index("migration") < names.index("tagstore")


@pytest.fixture
def world(tmp_path: Path) -> tuple[Spec, Host, Path]:
    spec = load_text(
        f"version: 1\nroot: {tmp_path}/docker\nstate_dir: {tmp_path}/state\n"
        f"pidfile: {tmp_path}/docker.pid\n"
    )
    files = tmp_path / "files"
    files.mkdir()
    (files / "keep").write_text("old")
    host = Host.for_spec(spec)
    engine.prepare_state_dir(host)
    return spec, host, files


def snapshot(base: Path) -> dict[str, Any]:
    return {
        str(p.relative_to(base)): (p.stat().st_mode, p.read_text() if p.is_file() else None)
        for p in sorted(base.rglob("*"))
        if p.name != "ledger.json"
    }


def run(spec: Spec, host: Host, recs: list[Any]) -> engine.Outcome:
    ordered = engine.order(recs)
    the_plan = engine.plan(ordered, spec, engine.observe(ordered, spec, host))
    return engine.apply(the_plan, ordered, spec, host)


def test_a_failed_concern_is_undone_and_the_independent_ones_converge(
    world: tuple[Spec, Host, Path],
) -> None:
    spec, host, files = world
    toy = Files(files, {"keep": "new", "added": "x", "third": "y"}, fail_on=2)
    outcome = run(spec, host, [Directories(), toy])
    assert outcome.error is not None
    assert outcome.error.startswith("+ file added failed: no space left on device")
    assert set(outcome.failed) == {"files"}
    # The toy's first update is undone; the directories it comes after stay converged.
    assert [c.resource for c in outcome.rolled_back] == ["file keep"]
    assert (files / "keep").read_text() == "old"
    assert not (files / "added").exists()
    assert Path(spec.root, "graph").is_dir()
    assert not outcome.undo_failures


def test_a_failure_undoes_the_concerns_that_come_after_it(
    world: tuple[Spec, Host, Path],
) -> None:
    spec, host, files = world
    before = snapshot(files.parent)

    class Failing(Directories):
        def apply(self, change: Change, host: Host) -> None:
            if change.name.endswith("/tmp"):
                raise OSError(28, "No space left on device", change.name)
            super().apply(change, host)

    outcome = run(spec, host, [Failing(), Files(files, {"keep": "new"})])
    assert outcome.error is not None
    assert set(outcome.failed) == {"directories", "files"}
    assert "files: skipped, it comes after directories, which did not converge" in outcome.error
    assert snapshot(files.parent) == before


def test_an_error_note_refuses_only_its_concern_and_those_after_it(
    world: tuple[Spec, Host, Path],
) -> None:
    spec, host, files = world

    @dataclass(frozen=True)
    class Nothing:
        pass

    class Refusing:
        name: ClassVar[str] = "refusing"
        after: ClassVar[tuple[str, ...]] = ()
        observation: ClassVar[type] = Nothing

        def observe(self, spec: Spec, host: Host) -> Nothing:
            return Nothing()

        def diff(self, spec: Spec, seen: Seen) -> list[Change]:
            return []

        def check(self, spec: Spec, seen: Seen) -> list[Note]:
            return [Note(self.name, "error", "refused")]

    outcome = run(spec, host, [Refusing(), Directories(), Files(files, {"keep": "new"})])
    assert outcome.error == "refusing: refused"
    assert (files / "keep").read_text() == "new"  # independent concerns converged
    assert Path(spec.root).is_dir()


def test_unconverged_apply_is_rolled_back(world: tuple[Spec, Host, Path]) -> None:
    spec, host, files = world
    outcome = run(spec, host, [Directories(), Files(files, {"keep": "new"}, ignore=True)])
    assert outcome.error == "did not converge: file keep c: wanted new, found old"
    assert [c.resource for c in outcome.rolled_back] == ["file keep"]
    assert Path(spec.root, "graph").is_dir()  # directories verified: it stays


def test_error_note_blocks_apply(world: tuple[Spec, Host, Path]) -> None:
    spec, host, files = world
    (Path(spec.root)).write_text("not a directory")
    before = snapshot(files.parent)
    outcome = run(spec, host, [Directories(), Files(files, {"keep": "new"})])
    assert outcome.error == (
        f"nothing was changed: directories: {spec.root} is a regular file, not a directory; "
        "left alone, never followed; files: skipped, it comes after directories, which did "
        "not converge"
    )
    assert snapshot(files.parent) == before


def test_observe_failure_is_a_note_and_skips_dependents(world: tuple[Spec, Host, Path]) -> None:
    spec, host, files = world

    class Broken(Directories):
        def observe(self, spec: Spec, host: Host) -> Any:
            raise PermissionError(13, "Permission denied", "/var/lib/docker")

    ordered = engine.order([Broken(), Files(files, {"keep": "new"})])
    obs = engine.observe(ordered, spec, host)
    assert obs.failed == {"directories", "files"}
    assert obs.notes == [
        Note("directories", "error", "cannot observe: permission denied (/var/lib/docker)"),
        Note("files", "error", "skipped, it comes after directories, which could not be observed"),
    ]


def test_claims_go_to_the_ledger_at_once(world: tuple[Spec, Host, Path]) -> None:
    spec, host, _ = world
    outcome = run(spec, host, [Directories()])
    assert outcome.ok
    ledger = Host.for_spec(spec).ledger
    assert ledger.owns("directories", str(spec.root))
    assert ledger.facts("directories", f"{spec.root}/graph") == {
        "mode": "0700",
        "owner": host_owner(),
        "created": True,
    }


def host_owner() -> str:
    import os

    return f"{os.geteuid()}:{os.getegid()}"


class Tables:
    """A toy batch reconciler, as iptables commits: one commit per table, side by side, and
    the nat table's commit fails while filter's goes through."""

    name: ClassVar[str] = "tables"
    after: ClassVar[tuple[str, ...]] = ()
    observation: ClassVar[type] = FilesObserved

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def observe(self, spec: Spec, host: Host) -> FilesObserved:
        return FilesObserved({})

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        return [
            Change(self.name, "rule", f"{table} {chain} -j X", "create", None, {"n": 1}, "new")
            for table, chain in (("nat", "POSTROUTING"), ("filter", "FORWARD"))
        ]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        return []

    def apply(self, change: Change, host: Host) -> None:
        self.apply_batch([change], host)

    def apply_batch(self, changes: list[Change], host: Host) -> None:
        self.batches.append([c.name for c in changes])
        if len(self.batches) == 1:
            done = [c for c in changes if c.name.startswith("filter")]
            raise PartiallyApplied("could not commit table nat: Bad rule", done)


def test_a_failed_batch_names_the_change_that_failed(world: tuple[Spec, Host, Path]) -> None:
    spec, host, _ = world
    toy = Tables()
    outcome = run(spec, host, [toy])
    assert (
        outcome.error == "+ rule nat POSTROUTING -j X failed: could not commit table nat: Bad rule"
    )
    assert toy.batches[1] == ["filter FORWARD -j X"]  # the undo of what did commit


def test_an_interrupt_part_way_undoes_the_run(world: tuple[Spec, Host, Path]) -> None:
    spec, host, files = world

    class Interrupted(Files):
        def apply(self, change: Change, host: Host) -> None:
            if change.name == "added":  # ^C between two changes
                raise KeyboardInterrupt
            super().apply(change, host)

    ordered = engine.order([Directories(), Interrupted(files, {"keep": "new", "added": "x"})])
    the_plan = engine.plan(ordered, spec, engine.observe(ordered, spec, host))
    with pytest.raises(KeyboardInterrupt):
        engine.apply(the_plan, ordered, spec, host)
    assert (files / "keep").read_text() == "old"
    assert not (files / "added").exists()
    assert not Path(spec.root).exists()


def test_a_reconciler_prepares_with_what_came_before_it_then_observes(
    world: tuple[Spec, Host, Path],
) -> None:
    """base.Preparing: `prepare` is called just before the reconciler's own observation, with
    the observations of those before it."""
    spec, host, files = world
    events: list[object] = []

    class Preparing(Files):
        name: ClassVar[str] = "preparing"
        after: ClassVar[tuple[str, ...]] = ("files",)

        def prepare(self, spec: Spec, seen: Seen) -> None:
            events.append(("prepare", seen.get(FilesObserved)))

        def observe(self, spec: Spec, host: Host) -> FilesObserved:
            events.append("observe")
            return super().observe(spec, host)

    ordered = engine.order([Preparing(files, {}), Files(files, {})])
    obs = engine.observe(ordered, spec, host)
    assert events == [("prepare", FilesObserved({"keep": "old"})), "observe"]
    assert obs.seen[FilesObserved] == FilesObserved({"keep": "old"})
