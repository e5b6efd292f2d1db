"""`make bench`: whole-process timings of dockyard beside a shell baseline, pyinfra and Ansible.

Every number is a median of several runs measured here, now; the ratios compare two commands
measured in the same run, so they travel between machines better than the seconds do.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import (
    fleet,
    iptables_scale,
    peers,
    spec_incremental,
    spec_scale,
    vfs_migration,
    watch,
)
from dockyard import engine
from dockyard.reconcilers import default_set

HELP_GOAL = 0.060


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return time.perf_counter() - started


def median(measure: Callable[[], float], runs: int) -> float:
    return statistics.median(measure() for _ in range(runs))


def main() -> int:
    if os.geteuid() != 0:
        print("make bench creates network namespaces and needs root", file=sys.stderr)
        return 1
    names = [r.name for r in engine.order(default_set())]
    print(f"reconcilers: {', '.join(names)}")

    # The console script, as users type it (`python -m` adds runpy's own imports).
    command = [peers.RECONCILE]
    python = Path(peers.RECONCILE).with_name("python")
    help_time = median(lambda: timed([*command, "--help"]), 21)
    python_time = median(lambda: timed([str(python), "-c", "pass"]), 21)
    verdict = "met" if help_time < HELP_GOAL else "MISSED"
    print(
        f"reconcile --help: {help_time * 1000:.0f} ms (goal < {HELP_GOAL * 1000:.0f} ms: "
        f"{verdict}); python -c pass: {python_time * 1000:.0f} ms; medians of 21"
    )
    return (
        peers.main()
        or spec_scale.main()
        or spec_incremental.main()
        or iptables_scale.main()
        or watch.main()
        or fleet.main()
        or vfs_migration.main()
    )


if __name__ == "__main__":
    raise SystemExit(main())
