"""dockyard as a library, for programs that drive it in their own process (the Ansible module).

Each function returns the document that `reconcile ... -o json` prints for the same run, as
Python data, so that a caller never reads dockyard's text. A bad spec raises `SpecError`, whose
`problems` are the located messages the command prints; other failures that stop a run before
it starts (the lock, an unusable state directory) raise `DockyardError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dockyard.spec import Spec

Document = dict[str, Any]
SpecSource = Mapping[str, Any] | str | os.PathLike[str]

INLINE_SOURCE = "<inline spec>"


def load(source: SpecSource) -> Spec:
    """The validated spec from a file's path, or from data shaped as the file would be.

    Data is checked as the YAML text it renders to, named `<inline spec>`: each problem still
    names its field, and its line and column in that rendering (`rendered(source)`).
    """
    from dockyard import spec

    if isinstance(source, Mapping):
        return spec.load_text(rendered(source), INLINE_SOURCE)
    return spec.load(Path(source))


def rendered(data: Mapping[str, Any]) -> str:
    """The YAML text that `load` checks for a spec given as data."""
    import yaml

    return yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False)


def plan(spec: Spec, *, teardown: bool = False, force_dns: bool = False) -> Document:
    """What `reconcile plan` (or, with `teardown`, `reconcile down --dry-run`) would print with
    `-o json`; nothing on the host is changed."""
    from dockyard import engine, render
    from dockyard.reconcilers import default_set
    from dockyard.state.host import Host

    reconcilers = engine.order(default_set(force_dns=force_dns))
    host = Host.for_spec(spec)
    observed = engine.observe(reconcilers, spec, host)
    planned = engine.plan(reconcilers, spec, observed, teardown)
    made = (
        engine.down_state_dir_changes(planned, host) if teardown else engine.state_dir_changes(host)
    )
    the_plan = engine.with_state_dir(planned, made)
    return render.plan_json(
        the_plan, "down" if teardown else "plan", pending=bool(the_plan.changes)
    )


def apply(
    spec: Spec,
    *,
    teardown: bool = False,
    force_dns: bool = False,
    lock_timeout: float = 30.0,
    wait: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> Document:
    """Converge the host (with `teardown`: remove what dockyard owns at run time, as
    `reconcile down`), verify, and roll this run back on failure; the document of
    `reconcile apply|down -o json`. Its `converged` is false and `error` says why when the
    run failed; `applied` lists what stays changed. While a watch holds the lock, the run
    stops at once (a watch never lets go) unless `wait`."""
    from dockyard import engine, lock, render
    from dockyard.reconcilers import default_set
    from dockyard.state.host import Host

    lock_timeout = checked_lock_timeout(lock_timeout)
    command = "down" if teardown else "apply"
    reconcilers = engine.order(default_set(force_dns=force_dns))
    host = Host.for_spec(spec)
    # A failed check stops the run before anything changes, not even the state directory.
    checks = [r for r in reconcilers if not r.after]
    checked = engine.plan(checks, spec, engine.observe(checks, spec, host))
    idle = engine.idle_down(reconcilers, spec, host) if teardown and not checked.errors else None
    if idle is not None:
        return render.outcome_json(idle, engine.Outcome(idle), command)
    if checked.errors:
        the_plan, outcome = checked, engine.apply(checked, checks, spec, host)
    else:
        made = engine.prepare_state_dir(host)
        with lock.exclusive(Path(host.state_dir) / "lock", lock_timeout, wait_for_watch=wait):
            seen = engine.observe(reconcilers, spec, host)
            the_plan = engine.with_state_dir(engine.plan(reconcilers, spec, seen, teardown), made)
            outcome = engine.apply(the_plan, reconcilers, spec, host, progress, teardown)
    return render.outcome_json(the_plan, outcome, command)


def checked_lock_timeout(seconds: float) -> float:
    """`seconds` if the command line would take it as --lock-timeout (finite, 0 to 86400:
    NaN or infinity would wait forever on a held lock), else a `DockyardError`."""
    import math

    from dockyard.cli import LOCK_TIMEOUT_RANGE
    from dockyard.errors import DockyardError

    low, high = LOCK_TIMEOUT_RANGE
    if not (math.isfinite(seconds) and low <= seconds <= high):
        raise DockyardError(
            f"lock_timeout: a number of seconds from {low:g} to {high:g}, not {seconds:g}"
        )
    return float(seconds)
