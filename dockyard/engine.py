"""Ordering, observing, planning, applying, verifying and rolling back one run."""

from __future__ import annotations

import contextlib
import graphlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from dockyard.change import Change, Note, Plan
from dockyard.errors import DockyardError, PartiallyApplied
from dockyard.reconcilers.base import Reconciler, Seen
from dockyard.spec import Spec
from dockyard.state.host import Host

# Each step is said twice: `what ...` when it starts, then `done` or `failed: why`.
Progress = Callable[[str], None]


def order(reconcilers: Iterable[Reconciler]) -> list[Reconciler]:
    """Dependencies first; among reconcilers that are ready together, the given order.

    An `after` naming a reconciler that is not in the set is ignored, so a subset can run.
    """
    given = list(reconcilers)
    names = {r.name: r for r in given}
    rank = {r.name: i for i, r in enumerate(given)}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for r in given:
        sorter.add(r.name, *(d for d in r.after if d in names))
    try:
        sorter.prepare()
    except graphlib.CycleError as e:
        raise DockyardError(f"reconcilers depend on each other in a cycle: {e.args[1]}") from None
    out: list[Reconciler] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=rank.__getitem__)
        out.extend(names[n] for n in ready)
        sorter.done(*ready)
    return out


@dataclass
class Observation:
    seen: Seen = field(default_factory=Seen)
    notes: list[Note] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    # Reconcilers a watch takes as they were at an earlier pass that found nothing to change
    # for them (not observed, no diff): the notes their check gave then.
    reused: dict[str, list[Note]] = field(default_factory=dict)


# Given a reconciler about to be observed and what was seen before it: the notes to reuse
# instead of observing it, or None to observe it.
Reuse = Callable[[Reconciler, Seen], list[Note] | None]


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = f" ({e.filename})" if e.filename else ""
        return f"{e.strerror.lower()}{where}"
    return str(e) or type(e).__name__


def observe(
    reconcilers: Iterable[Reconciler], spec: Spec, host: Host, reuse: Reuse | None = None
) -> Observation:
    obs = Observation()
    notice = host.ledger.notice()
    if notice:
        obs.notes.append(Note("ledger", "warning", notice))
    for r in reconcilers:
        blocked = [d for d in r.after if d in obs.failed]
        if blocked:
            obs.failed.add(r.name)
            after = ", ".join(blocked)
            why = f"skipped, it comes after {after}, which could not be observed"
            obs.notes.append(Note(r.name, "error", why))
            continue
        kept = reuse(r, obs.seen) if reuse is not None else None
        if kept is not None:
            obs.reused[r.name] = kept
            continue
        prepare = getattr(r, "prepare", None)  # base.Preparing
        try:
            if prepare is not None:
                prepare(spec, obs.seen)
            obs.seen.add(r.name, r.observe(spec, host))
        except (OSError, DockyardError) as e:
            obs.failed.add(r.name)
            obs.notes.append(Note(r.name, "error", f"cannot observe: {_why(e)}"))
    return obs


def plan(
    reconcilers: Iterable[Reconciler], spec: Spec, obs: Observation, teardown: bool = False
) -> Plan:
    """The changes toward the spec; with `teardown`, those that remove the runtime state
    dockyard owns (`reconcile down`), last reconciler first. Data is never part of it."""
    result = Plan(notes=list(obs.notes))
    ordered = list(reconcilers)
    for r in reversed(ordered) if teardown else ordered:
        if r.name in obs.failed:
            continue
        if r.name in obs.reused:
            result.add_notes(obs.reused[r.name])
            continue
        if teardown:
            tear = getattr(r, "teardown", None)
            if tear is not None:
                changes, notes = tear(spec, obs.seen)
                result.changes.extend(changes)
                result.add_notes(notes)
            continue
        result.changes.extend(r.diff(spec, obs.seen))
        result.add_notes(r.check(spec, obs.seen))
    return result


@dataclass
class Outcome:
    plan: Plan
    applied: list[Change] = field(default_factory=list)
    rolled_back: list[Change] = field(default_factory=list)
    undo_failures: list[str] = field(default_factory=list)
    # Reconciler -> why it did not converge: refused by an error note, failed to apply or to
    # verify, or skipped because one it comes after did.
    failed: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def dependents(names: Iterable[str], ordered: list[Reconciler]) -> set[str]:
    """`names` and every reconciler that comes after one of them, directly or not."""
    out = set(names)
    for r in ordered:  # dependencies come first
        if any(d in out for d in r.after):
            out.add(r.name)
    return out


def describe_leftover(changes: Iterable[Change]) -> list[str]:
    """`directory /x mode: wanted 0700, found 0755` for each change verification still finds."""
    out = []
    for c in changes:
        if c.action == "create":
            out.append(f"{c.resource}: wanted it, found none")
        elif c.action == "delete":
            out.append(f"{c.resource}: wanted none, found it")
        else:
            out.extend(
                f"{c.resource} {attr}: wanted {new}, found {old}"
                for attr, old, new in c.differences()
            )
    return out


def apply(
    the_plan: Plan,
    reconcilers: Iterable[Reconciler],
    spec: Spec,
    host: Host,
    progress: Progress = lambda _: None,
    teardown: bool = False,
) -> Outcome:
    """Carry out `the_plan`, verify by observing again, and undo what fails.

    Failures are contained: a reconciler refused by an error note, or whose changes fail or do
    not verify, has this run's changes undone, together with those of every reconciler that
    comes after it; the others still converge. The error names every one that did not."""
    ordered = order(reconcilers)
    by_name = {r.name: r for r in ordered}
    outcome = Outcome(the_plan)
    for note in the_plan.errors:
        outcome.failed.setdefault(note.reconciler, f"{note.reconciler}: {note.message}")
    blocked = dependents(outcome.failed, ordered)
    try:
        for name, grouped in groupby(the_plan.changes, key=lambda c: c.reconciler):
            group = list(grouped)
            if name == STATE:  # made before the lock could be taken (prepare_state_dir)
                outcome.applied.extend(group)
                continue
            if name in blocked:
                _skipped(outcome, by_name[name], blocked)
                continue
            try:
                _carry_out_all(by_name[name], group, host, outcome, progress)
            except (OSError, DockyardError) as e:
                outcome.failed[name] = f"{_failed_at(group, outcome)}{_why(e)}"
                blocked |= _undo(dependents([name], ordered), outcome, by_name, host, progress)
        if _kept(outcome):
            _verify(ordered, spec, host, teardown, blocked, outcome, by_name, progress)
    except BaseException as e:
        # A bug, or ^C part way: nothing of this run is left half done.
        what = "interrupted" if isinstance(e, KeyboardInterrupt) else "internal error"
        outcome.error = f"{what}; this run's changes were undone"
        _roll_back(outcome, by_name, host, progress, set(by_name))
        raise
    finally:
        _save_ledger(host, outcome)
        host.save_boot_facts()  # under the lock, and never by a plan
    if outcome.failed:
        nothing = _nothing_changed(outcome)
        outcome.error = nothing + "; ".join(outcome.failed.values())
    return outcome


def _nothing_changed(outcome: Outcome) -> str:
    """The start of a failed run's error, when it is true that (almost) nothing changed."""
    if any(c.reconciler != STATE for c in outcome.applied):
        return ""
    if outcome.applied:
        return "nothing was changed but dockyard's own state directory (made for its lock): "
    return "nothing was changed: "


def _skipped(outcome: Outcome, reconciler: Reconciler, blocked: set[str]) -> None:
    if reconciler.name not in outcome.failed:
        after = ", ".join(d for d in reconciler.after if d in blocked)
        undone = any(c.reconciler == reconciler.name for c in outcome.rolled_back)
        outcome.failed[reconciler.name] = (
            f"{reconciler.name}: {'undone' if undone else 'skipped'}, it comes after {after}, "
            "which did not converge"
        )


def _kept(outcome: Outcome) -> list[Change]:
    undone = set(map(id, outcome.rolled_back))
    return [c for c in outcome.applied if id(c) not in undone]


def _verify(
    ordered: list[Reconciler],
    spec: Spec,
    host: Host,
    teardown: bool,
    blocked: set[str],
    outcome: Outcome,
    by_name: dict[str, Reconciler],
    progress: Progress,
) -> None:
    """Observe again: what a reconciler that was applied still finds to change did not
    converge, and is undone with its dependents."""
    again = plan(ordered, spec, observe(ordered, spec, host), teardown)
    problems: dict[str, list[str]] = {}
    for note in again.errors:
        problems.setdefault(note.reconciler, []).append(f"{note.reconciler}: {note.message}")
    for name, group in groupby(again.changes, key=lambda c: c.reconciler):
        problems.setdefault(name, []).extend(describe_leftover(group))
    unconverged = {n: p for n, p in problems.items() if n not in blocked}
    for name, found in unconverged.items():
        outcome.failed[name] = "did not converge: " + "; ".join(found)
    if unconverged:
        _undo(dependents(unconverged, ordered), outcome, by_name, host, progress)


def _undo(
    names: set[str],
    outcome: Outcome,
    by_name: dict[str, Reconciler],
    host: Host,
    progress: Progress,
) -> set[str]:
    """Roll back this run's changes of `names`; returns `names`. A reconciler whose changes
    are undone only because one it comes after failed is named as not converged too."""
    _roll_back(outcome, by_name, host, progress, names)
    for name, reconciler in by_name.items():
        if name in names and any(c.reconciler == name for c in outcome.rolled_back):
            _skipped(outcome, reconciler, names)
    return names


def _failed_at(group: list[Change], outcome: Outcome) -> str:
    done = {id(c) for c in outcome.applied}
    change = next((c for c in group if id(c) not in done), None)
    return f"{change.symbol} {change.resource} failed: " if change else ""


def _carry_out_all(
    reconciler: Reconciler,
    changes: list[Change],
    host: Host,
    outcome: Outcome,
    progress: Progress,
) -> None:
    """One reconciler's changes: one by one, or as one batch when the reconciler commits in
    bulk (iptables: one commit per table)."""
    apply_batch = getattr(reconciler, "apply_batch", None)
    if apply_batch is None:
        for change in changes:
            with step(progress, f"{change.symbol} {change.resource}"):
                _carry_out(reconciler, change, host)
            outcome.applied.append(change)
        return
    try:
        with step(progress, f"{reconciler.name}: {len(changes)} change(s)"):
            apply_batch(changes, host)
    except PartiallyApplied as e:
        _record_all(e.applied, host)
        outcome.applied.extend(e.applied)
        raise
    _record_all(changes, host)
    outcome.applied.extend(changes)


@contextlib.contextmanager
def step(progress: Progress, what: str) -> Iterator[None]:
    """A progress line that ends: `what ...`, then `done` or `failed: why`."""
    progress(f"{what} ...")
    try:
        yield
    except (OSError, DockyardError) as e:
        progress(f"failed: {_why(e)}")
        raise
    progress("done")


def _carry_out(reconciler: Reconciler, change: Change, host: Host) -> None:
    reconciler.apply(change, host)
    _record(change, host)


def _record_all(changes: Iterable[Change], host: Host) -> None:
    for change in changes:
        _record(change, host)


def _record(change: Change, host: Host) -> None:
    if change.claim:
        if change.action == "delete":
            host.ledger.release(change.reconciler, change.name)
        else:
            facts = dict(change.after or {})
            if change.action == "create":
                facts["created"] = True
            host.ledger.claim(change.reconciler, change.name, facts)
        host.ledger.save()  # at once: a crash must not forget what dockyard created


def _roll_back(
    outcome: Outcome,
    by_name: dict[str, Reconciler],
    host: Host,
    progress: Progress,
    names: set[str],
) -> None:
    """Undo the changes of `names` that this run applied and has not undone, last first."""
    undone = set(map(id, outcome.rolled_back))
    todo = [c for c in reversed(outcome.applied) if c.reconciler in names and id(c) not in undone]
    for name, group in groupby(todo, key=lambda c: c.reconciler):
        reconciler = by_name[name]
        changes = list(group)
        if getattr(reconciler, "apply_batch", None) is not None and all(
            c.reversible for c in changes
        ):
            undos = [u for u in (c.undo() for c in changes) if u is not None]
            try:
                with step(progress, f"undo {name}: {len(changes)} change(s)"):
                    reconciler.apply_batch(undos, host)  # type: ignore[attr-defined]
                _record_all(undos, host)
                outcome.rolled_back.extend(changes)
            except (OSError, DockyardError) as e:
                outcome.undo_failures.append(
                    f"{name}: {len(changes)} change(s): undo failed: {_why(e)}"
                )
            continue
        for change in changes:
            _undo_one(reconciler, change, host, outcome, progress)


def _undo_one(
    reconciler: Reconciler, change: Change, host: Host, outcome: Outcome, progress: Progress
) -> None:
    undo = change.undo()
    if undo is None:
        outcome.undo_failures.append(f"{change.resource}: cannot be undone ({change.reason})")
        return
    try:
        with step(progress, f"undo {change.symbol} {change.resource}"):
            _carry_out(reconciler, undo, host)
        outcome.rolled_back.append(change)
    except (OSError, DockyardError) as e:
        outcome.undo_failures.append(f"{change.resource}: undo failed: {_why(e)}")


def _save_ledger(host: Host, outcome: Outcome) -> None:
    try:
        host.save_ledger()
    except OSError as e:
        msg = f"ledger not saved: {_why(e)}"
        outcome.error = f"{outcome.error}; {msg}" if outcome.error else msg


STATE = "state_dir"  # the changes that make dockyard's own directory (its lock, its ledger)
STATE_MODE, STATE_PARENT_MODE = 0o700, 0o755


def state_dir_changes(host: Host) -> list[Change]:
    """The directories that making `state_dir` creates: its missing parents, then itself.
    Planned like any change, so that plan and apply count the same."""
    state = host.state_dir
    missing = [p for p in (*reversed(state.parents), state) if not p.exists()]
    return [
        Change(
            STATE,
            "directory",
            str(path),
            "create",
            None,
            {"mode": f"{STATE_MODE if path == state else STATE_PARENT_MODE:04o}"},
            "dockyard's own directory (lock, ledger)" if path == state else "parent of state_dir",
            reversible=False,
        )
        for path in missing
    ]


def down_state_dir_changes(the_plan: Plan, host: Host) -> list[Change]:
    """What making the state directory adds to a teardown plan: nothing when the plan has
    nothing to take down and nothing refused, for then `down` makes nothing (`idle_down`)."""
    return state_dir_changes(host) if the_plan.changes or the_plan.errors else []


def idle_down(reconcilers: list[Reconciler], spec: Spec, host: Host) -> Plan | None:
    """The (empty) teardown plan of a host where dockyard never made its state directory and
    finds nothing of its own to take down; None when `down` has work, which takes the lock
    (and so makes the directory) and plans again under it. A teardown creates nothing."""
    if host.state_dir.exists():
        return None
    the_plan = plan(reconcilers, spec, observe(reconcilers, spec, host), True)
    return None if the_plan.changes or the_plan.errors else the_plan


def with_state_dir(the_plan: Plan, made: list[Change]) -> Plan:
    """`the_plan` with the state directory's changes first: those `prepare_state_dir` made
    (apply), or would make (plan). A directory the plan creates anyway is counted once."""
    planned = {c.name for c in the_plan.changes if c.kind == "directory" and c.action == "create"}
    the_plan.changes[:0] = [c for c in made if c.name not in planned]
    return the_plan


def prepare_state_dir(host: Host) -> list[Change]:
    """dockyard's own directory, for its lock and ledger; private to root. Returns the
    changes it made, which the run reports as applied."""
    made = state_dir_changes(host)
    try:
        host.state_dir.mkdir(mode=STATE_MODE, parents=True, exist_ok=True)
    except FileExistsError:
        raise DockyardError(f"{host.state_dir} (state_dir) is not a directory") from None
    except PermissionError:
        raise DockyardError(
            f"cannot create {host.state_dir} (state_dir): permission denied; run as root"
        ) from None
    return made
