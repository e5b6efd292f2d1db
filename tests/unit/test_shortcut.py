"""When a watch pass takes a reconciler as it was (shortcut.py): the bookkeeping, with a
reconciler whose glance says what the test wants and that counts how often it is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from dockyard.change import Change, Note, Plan
from dockyard.engine import Observation
from dockyard.reconcilers.base import Glance, Seen
from dockyard.shortcut import Shortcuts
from dockyard.spec import Spec, load_text

SPEC = load_text("version: 1\n")
HOST: Any = object()


@dataclass
class Firewall:
    name: ClassVar[str] = "firewall"
    token: object = 1
    exact: bool = True
    asked: list[object] = field(default_factory=list)

    def glance(self, spec: Spec, host: Any, since: object | None) -> Glance:
        self.asked.append(since)
        return Glance(self.token, same=since == self.token, exact=self.exact)


class Plain:
    name: ClassVar[str] = "plain"


@dataclass
class Pass:
    """One watch pass over the firewall: whether it was read, and the pass's outcome."""

    shortcuts: Shortcuts
    fw: Firewall
    before: tuple[tuple[str, object], ...] = (("bridge", "up"),)

    def run(self, spec: Spec = SPEC, changes: bool = False, failed: bool = False) -> bool:
        seen = Seen()
        for name, observed in self.before:
            seen.add(name, observed)
        reused = self.shortcuts.hook(spec, HOST)(self.fw, seen)  # type: ignore[arg-type]
        obs = Observation(seen=seen)
        plan = Plan(notes=[Note("firewall", "info", "a note")])
        if reused is not None:
            assert reused == plan.notes  # the notes of the pass it was clean at
            obs.reused["firewall"] = reused
        elif failed:
            obs.failed.add("firewall")
        elif changes:
            plan.changes.append(Change("firewall", "rule", "r", "create", None, {}, "missing"))
        self.shortcuts.settle(plan, obs)
        return reused is None


def watch(full_every: int = 10, **fw: Any) -> tuple[Pass, list[tuple[str, str]]]:
    reads: list[tuple[str, str]] = []
    shortcuts = Shortcuts(full_every, lambda r, how: reads.append((r, how)))
    return Pass(shortcuts, Firewall(**fw)), reads


def test_an_unchanged_firewall_is_read_once() -> None:
    p, reads = watch()
    assert [p.run() for _ in range(5)] == [True, False, False, False, False]
    assert p.fw.asked == [None, 1, 1, 1, 1]
    assert reads == [("firewall", "full")] + [("firewall", "none")] * 4


def test_a_changed_token_means_a_read() -> None:
    p, _ = watch()
    p.run()
    p.fw.token = 2
    assert p.run()
    assert not p.run()  # clean as of 2


def test_an_inexact_glance_is_trusted_for_full_every_minus_one_passes() -> None:
    p, reads = watch(full_every=3, exact=False)
    assert [p.run() for _ in range(7)] == [True, False, False, True, False, False, True]
    assert [how for _, how in reads] == ["full", "none", "none", "full", "none", "none", "full"]


def test_full_every_one_reads_every_pass() -> None:
    p, _ = watch(full_every=1, exact=False)
    assert all(p.run() for _ in range(3))


def test_a_new_spec_or_another_earlier_observation_means_a_read() -> None:
    p, _ = watch()
    p.run()
    assert p.run(spec=load_text("version: 1\n"))  # equal, but another spec: SIGHUP
    assert not p.run(spec=p.shortcuts._clean["firewall"].spec)
    p.before = (("bridge", "down"),)
    assert p.run()
    assert p.fw.asked[-1] is None  # the glance was told to read everything


def test_a_pass_with_changes_keeps_the_older_clean_token() -> None:
    """What changed since that token is read again; an inexact glance is not trusted until a
    full read is clean again."""
    p, _ = watch(exact=False)
    p.run()
    p.fw.token = 2
    assert p.run(changes=True)
    assert p.shortcuts._clean["firewall"].token == 1
    assert p.shortcuts._clean["firewall"].dirty
    p.fw.token = 1  # the repair put the table back at its old size
    assert p.run()  # dirty: read in full although the glance says the same
    assert not p.run()


def test_a_failed_observation_forgets_the_clean_record() -> None:
    p, _ = watch()
    p.run()
    p.fw.token = 2
    assert p.run(failed=True)
    assert "firewall" not in p.shortcuts._clean
    p.fw.token = 1
    assert p.run()


def test_a_glance_that_cannot_tell_is_never_trusted() -> None:
    p, _ = watch(token=None)
    assert all(p.run() for _ in range(3))


def test_a_reconciler_without_glance_is_always_observed() -> None:
    shortcuts = Shortcuts(10)
    assert shortcuts.hook(SPEC, HOST)(Plain(), Seen()) is None  # type: ignore[arg-type]


class Untouchable:
    name: ClassVar[str] = "firewall"
    after: ClassVar[tuple[str, ...]] = ()

    def observe(self, spec: Spec, host: Any) -> object:
        raise AssertionError("a reused reconciler is not observed")

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        raise AssertionError("a reused reconciler is not diffed")

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        raise AssertionError("nor checked")


def test_the_engine_plans_a_reused_reconciler_with_the_notes_it_gave() -> None:
    from dockyard import engine

    class Ledger:
        def notice(self) -> str:
            return ""

    host: Any = type("H", (), {"ledger": Ledger()})()
    kept = [Note("firewall", "error", "container_ip 10.0.0.2 is outside 172.17.0.0/16")]
    r: Any = Untouchable()
    obs = engine.observe([r], SPEC, host, lambda rec, seen: kept)
    assert obs.reused == {"firewall": kept}
    plan = engine.plan([r], SPEC, obs)
    assert plan.changes == [] and plan.notes == kept
