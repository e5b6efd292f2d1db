"""`make bench`: whole-process timings of dockyard beside an imperative shell baseline.

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

from bench import fleet, iptables_scale, spec_scale, vfs_migration, watch
from devtools.sandbox import Sandbox, sandbox
from dockyard import engine
from dockyard.reconcilers import default_set

BASELINE = Path(__file__).resolve().parent / "baseline.sh"
RUNS = int(os.environ.get("BENCH_RUNS", "7"))


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


def median(measure: Callable[[], float], runs: int = RUNS) -> float:
    return statistics.median(measure() for _ in range(runs))


def ours(box: Sandbox) -> list[str]:
    return ["ip", "netns", "exec", box.ns, sys.executable, "-m", "dockyard", str(box.spec_path)]


def baseline(box: Sandbox) -> list[str]:
    spec = box.spec
    resolv = spec["dns"]["host_resolv_conf"]
    return [
        "ip",
        "netns",
        "exec",
        box.ns,
        "sh",
        str(BASELINE),
        spec["root"],
        spec["pidfile"],
        resolv,
    ]


def fresh(command: Callable[[Sandbox], list[str]]) -> float:
    with sandbox({"version": 1}, prefix="dky-bench") as box:
        return timed(command(box), box.env)


def noop(command: Callable[[Sandbox], list[str]]) -> float:
    with sandbox({"version": 1}, prefix="dky-bench") as box:
        subprocess.run(ours(box), check=True, capture_output=True, env={**os.environ, **box.env})
        return median(lambda: timed(command(box), box.env))


def main() -> int:
    if os.geteuid() != 0:
        print("make bench creates network namespaces and needs root", file=sys.stderr)
        return 1
    names = [r.name for r in engine.order(default_set())]
    print(f"reconcilers: {', '.join(names)}; baseline: bench/baseline.sh doing the same steps")
    print(f"median of {RUNS} runs, whole processes, in fresh network namespaces\n")

    help_time = median(lambda: timed([sys.executable, "-m", "dockyard", "--help"]), 15)
    python_time = median(lambda: timed([sys.executable, "-c", "pass"]), 15)
    full = median(lambda: fresh(ours))
    full_base = median(lambda: fresh(baseline))
    idle = noop(ours)
    idle_base = noop(baseline)

    rows = [
        ("reconcile --help", help_time, python_time, "python -c pass", None),
        ("full converge, fresh host", full, full_base, "baseline.sh", 4.0),
        ("no-op converge", idle, idle_base, "baseline.sh again", 6.0),
    ]
    print(f"{'measure':<28}{'ours':>10}{'baseline':>10}{'ratio':>8}  goal   baseline is")
    for label, mine, base, what, goal in rows:
        ratio = mine / base
        verdict = "" if goal is None else f"<= {goal:g}x " + ("met" if ratio <= goal else "MISSED")
        timings = f"{mine * 1000:>8.0f}ms{base * 1000:>8.0f}ms{ratio:>7.1f}x"
        print(f"{label:<28}{timings}  {verdict:<12} {what}")
    return (
        spec_scale.main()
        or iptables_scale.main()
        or watch.main()
        or fleet.main()
        or vfs_migration.main()
    )


if __name__ == "__main__":
    raise SystemExit(main())
