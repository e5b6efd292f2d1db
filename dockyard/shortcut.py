"""Which reconcilers a watch pass may take as they were, instead of reading them again.

A diff is a pure function of the spec and the observations. So a reconciler whose diff came
out empty at some pass still has nothing to do at a later one if the spec is the same object,
every observation made before its own (all its diff and check may read) compares equal, and
its own part of the host has not changed. The last is what a reconciler that offers
`glance` (base.Glancing) tells cheaply: the firewall's generation or table sizes instead of
200,000 rules. A glance that cannot rule a change out (`exact` False: a legacy rule edited in
place keeps the table's size) is trusted for at most `full_every - 1` passes in a row; the
next one reads in full, so such an edit is repaired within `full_every` passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.change import Note, Plan
from dockyard.engine import Observation, Reuse
from dockyard.reconcilers.base import Glance, Reconciler, Seen
from dockyard.spec import Spec
from dockyard.state.host import Host


@dataclass
class Clean:
    """The last pass at which a reconciler's diff was empty: under what, and what it said."""

    spec: Spec
    before: tuple[tuple[str, object], ...]
    token: object
    notes: list[Note]
    trusted: int = 0  # passes since, taken on an inexact glance
    dirty: bool = False  # a later pass found changes: inexact glances are not enough


@dataclass
class Pending:
    spec: Spec
    before: tuple[tuple[str, object], ...]
    token: object


class Shortcuts:
    def __init__(
        self, full_every: int, on_read: Callable[[str, str], None] = lambda r, how: None
    ) -> None:
        self.full_every = full_every
        self._on_read = on_read  # (reconciler, "full" | "partial" | "none"), for the metrics
        self._clean: dict[str, Clean] = {}
        self._pending: dict[str, Pending] = {}

    def hook(self, spec: Spec, host: Host) -> Reuse:
        """What `engine.observe` asks before observing each reconciler, for one pass."""
        self._pending.clear()
        return lambda r, seen: self._reuse(r, spec, host, seen)

    def _reuse(self, r: Reconciler, spec: Spec, host: Host, seen: Seen) -> list[Note] | None:
        glance: Callable[[Spec, Host, object | None], Glance] | None = getattr(r, "glance", None)
        if glance is None:
            return None
        before = tuple(seen.items())
        clean = self._clean.get(r.name)
        if clean is not None and (clean.spec is not spec or clean.before != before):
            clean = None
        look = glance(spec, host, clean.token if clean is not None else None)
        if clean is not None and look.same and look.token is not None:
            if look.exact:
                clean.token = look.token
                self._count(r.name, "none")
                return clean.notes
            if not clean.dirty and clean.trusted + 1 < self.full_every:
                clean.trusted += 1
                self._count(r.name, "none")
                return clean.notes
            look = glance(spec, host, None)  # this pass reads in full
        self._pending[r.name] = Pending(spec, before, look.token)
        self._count(r.name, "partial" if look.part else "full")
        return None

    def _count(self, name: str, how: str) -> None:
        self._on_read(name, how)

    def settle(self, the_plan: Plan, obs: Observation) -> None:
        """After planning a pass: a reconciler read this pass whose diff is empty is clean as of
        the token taken before it was read. One with changes keeps the older clean record
        (what changed since is read again), marked dirty; one that failed loses it."""
        changed = {c.reconciler for c in the_plan.changes}
        for name, pending in self._pending.items():
            if name in obs.failed or pending.token is None:
                self._clean.pop(name, None)
            elif name in changed:
                old = self._clean.get(name)
                if old is not None:
                    old.dirty = True
            else:
                notes = [n for n in the_plan.notes if n.reconciler == name]
                self._clean[name] = Clean(pending.spec, pending.before, pending.token, notes)
        self._pending.clear()


def forget(reconcilers: list[Reconciler]) -> None:
    """Between passes: drop what each kept for a verification (base.Glancing.forget)."""
    for r in reconcilers:
        drop: Any = getattr(r, "forget", None)
        if drop is not None:
            drop()
