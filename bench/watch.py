"""Watch mode: how fast drift is repaired, and what an idle watch costs.

Repair latency: the bridge deleted by hand (netlink events: goal < 200 ms) and an owned
iptables rule deleted by hand (no events: within one interval). Idle cost: CPU time of the
watch process over BENCH_IDLE_SECONDS (default 60) at a 10 s interval (goal < 0.5% of one
core), and its resident memory.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from devtools.sandbox import Sandbox, sandbox

INTERVAL = 10.0
IDLE = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
LIMIT = 30.0


def until(check: list[str], box: Sandbox, present: bool = True, needle: str = "") -> float:
    """Seconds until `check` succeeds (and prints `needle`), polling as fast as `ip` runs."""
    started = time.perf_counter()
    while time.perf_counter() - started < LIMIT:
        out = subprocess.run(check, capture_output=True, text=True, check=False)
        if (out.returncode == 0) == present and needle in out.stdout:
            return time.perf_counter() - started
    raise SystemExit(f"not repaired within {LIMIT}s: {check}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    if os.geteuid() != 0:
        print("the watch benchmark creates network namespaces and needs root", file=sys.stderr)
        return 1
    with sandbox({"version": 1}, prefix="dky-watch") as box:
        argv = box.dockyard("watch", "SPEC", "--interval", str(INTERVAL))
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **box.env},
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "watching for drift" in line:
                    break
            pid = int((Path(box.spec["state_dir"]) / "dockyard.pid").read_text())
            link = ["ip", "-n", box.ns, "link", "show", "docker0"]
            bridge = []
            for _ in range(5):
                subprocess.run(["ip", "-n", box.ns, "link", "del", "docker0"], check=True)
                bridge.append(until(link, box))
                time.sleep(0.5)
            save = ["ip", "netns", "exec", box.ns, "iptables-save", "-t", "nat"]
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    box.ns,
                    "iptables",
                    "-w",
                    "-t",
                    "nat",
                    "-D",
                    "POSTROUTING",
                    "1",
                ],
                check=True,
                env={**os.environ, **box.env},
            )
            rule = until(save, box, needle="MASQUERADE")
            time.sleep(2)
            before = cpu_seconds(pid)
            time.sleep(IDLE)
            idle = (cpu_seconds(pid) - before) / IDLE
            memory = rss_mib(pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"\nwatch mode (interval {INTERVAL:g}s)")
    print(
        f"  bridge deleted -> repaired: median {statistics.median(bridge) * 1000:.0f} ms "
        f"of {len(bridge)} (goal < 200 ms, event-driven)"
    )
    print(f"  owned iptables rule deleted -> repaired: {rule:.1f} s (goal: within one interval)")
    print(
        f"  idle CPU over {IDLE:g}s: {idle * 100:.2f}% of one core (goal < 0.5%); "
        f"resident memory {memory:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
