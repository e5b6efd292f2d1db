"""Reading a large spec changed in one published port, once the spec before the change was
read (and kept, dockyard/spec/kept.py): `dockyard.spec.load` of the changed file, against
loading a spec never seen (the whole file read) and the same spec unchanged (kept).

Each run is a fresh process with a fresh cache directory: the spec before the change is
loaded and its keeping waited for, untimed; then the changed one is loaded, timed. Medians of
BENCH_SPEC_RUNS (default 7) at BENCH_SPEC_PORTS (default 100,000) ports, written as
bench/iptables_scale.py's `spec(n, changed=)` and the sandbox writes them. Works on any
dockyard that has `dockyard.spec.load`, to compare one commit with another:
`PYTHONPATH=<checkout> python -m bench.spec_incremental`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bench.iptables_scale import spec

PORTS = int(os.environ.get("BENCH_SPEC_PORTS", "100000"))
RUNS = int(os.environ.get("BENCH_SPEC_RUNS", "7"))

ONE_RUN = """
import json, sys, time
from dockyard import background
from dockyard.spec import load
base, changed = sys.argv[1:3]
if base:
    load(base)
    background.finish()
started = time.perf_counter()
spec = load(changed)
elapsed = time.perf_counter() - started
background.finish()
print(json.dumps({"seconds": elapsed, "ports": len(spec.network.published_ports)}))
"""


def run(base: Path | None, changed: Path, cache: Path) -> float:
    env = {**os.environ, "DOCKYARD_CACHE_DIR": str(cache)}
    argv = [sys.executable, "-c", ONE_RUN, str(base or ""), str(changed)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    assert result["ports"] == PORTS
    return float(result["seconds"])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dky-spec-incr-") as tmp:
        where = Path(tmp)
        base, changed = where / "base.yaml", where / "changed.yaml"
        base.write_text(yaml.safe_dump(spec(PORTS), sort_keys=False))
        changed.write_text(yaml.safe_dump(spec(PORTS, changed=PORTS // 2), sort_keys=False))
        cases = {
            "never seen (whole file)": (None, changed),
            "unchanged (kept)": (changed, changed),
            "one changed mapping": (base, changed),
        }
        results: dict[str, list[float]] = {}
        for name, (before, after) in cases.items():
            times = []
            for n in range(RUNS):
                cache = where / f"cache-{len(results)}-{n}"
                times.append(run(before, after, cache))
            results[name] = times
    import dockyard

    print(f"dockyard.spec.load at {PORTS:,} ports, {RUNS} runs ({Path(dockyard.__file__).parent})")
    for name, times in results.items():
        print(
            f"  {name:26} median {statistics.median(times):.3f} s"
            f"  (min {min(times):.3f}, max {max(times):.3f})"
        )
    print("load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
