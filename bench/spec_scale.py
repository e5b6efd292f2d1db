"""A bad spec fails fast at scale: a 100,000-port spec with one bad entry (a port out of
range; a key given twice, which yaml-rs refuses without saying where; a port out of range in
a spec written as JSON) against the same
spec valid, loaded in this process (file to validated spec, or to the located error) and as
a whole `reconcile validate` process. Goal: the bad one within 2x the valid one.

BENCH_SPEC_PORTS overrides the size; medians of BENCH_SPEC_RUNS (default 5).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.iptables_scale import spec
from dockyard.errors import SpecError
from dockyard.spec import load

PORTS = int(os.environ.get("BENCH_SPEC_PORTS", "100000"))
RUNS = int(os.environ.get("BENCH_SPEC_RUNS", "5"))
GOAL = 2.0
BAD_PORT = PORTS * 4 // 7  # somewhere in the middle: host_port 0


def write_specs(where: Path) -> list[tuple[str, Path, Path]]:
    """(what is wrong, the valid spec, the spec with that one bad entry)."""
    data = spec(PORTS)
    text = yaml.safe_dump(data, sort_keys=False)
    at = text.index("  container_port:", len(text) * 4 // 7)
    twice = f"{text[:at]}  container_port: 1\n  {text[at:]}"
    valid_json = json.dumps(data, indent=2)
    data["network"]["published_ports"][BAD_PORT]["host_port"] = 0
    files = {
        "good.yaml": text,
        "bad.yaml": yaml.safe_dump(data, sort_keys=False),
        "twice.yaml": twice,
        "good.json": valid_json,
        "bad.json": json.dumps(data, indent=2),
    }
    for name, content in files.items():
        (where / name).write_text(content)
    return [
        ("port 0", where / "good.yaml", where / "bad.yaml"),
        ("key twice", where / "good.yaml", where / "twice.yaml"),
        ("JSON, port 0", where / "good.json", where / "bad.json"),
    ]


def in_process(path: Path) -> float:
    started = time.perf_counter()
    try:
        load(path)
    except SpecError as e:
        assert len(e.problems) == 1, e.problems
    return time.perf_counter() - started


def whole_process(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dockyard", "validate", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def median(measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(RUNS))


def main() -> int:
    print(f"\nbad spec at scale ({PORTS:,} published ports, one bad entry; medians of {RUNS})")
    with tempfile.TemporaryDirectory(prefix="dky-spec-") as tmp:
        cases = write_specs(Path(tmp))
        print(f"{'measure':<44}{'valid':>9}{'bad':>9}{'ratio':>8}  goal")
        measures: list[tuple[str, Callable[[Path], float]]] = [
            ("load in process", in_process),
            ("reconcile validate (process)", whole_process),
        ]
        for label, measure in measures:
            for kind, good, path in cases:
                ok = median(lambda: measure(good))  # noqa: B023 - called at once
                wrong = median(lambda: measure(path))  # noqa: B023
                ratio = wrong / ok
                verdict = f"<= {GOAL:g}x " + ("met" if ratio <= GOAL else "MISSED")
                name = f"{label}, {kind}"
                print(f"{name:<44}{ok:>8.2f}s{wrong:>8.2f}s{ratio:>7.2f}x  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
