"""Watch mode at scale: what an idle watch costs, and how fast it repairs drift.

For N published ports (BENCH_WATCH_SCALE, default 0,10000,100000) on each backend
(BENCH_WATCH_BACKENDS, default legacy,nft), in a fresh namespace: a watch converges, then
- idle: its CPU time (its own and its children's: iptables-save and the like, from
  /proc/PID/stat) over BENCH_WATCH_PASSES passes (default 10, = --full-every, so one periodic
  full comparison on legacy is in the window), per second of wall time, and its resident
  memory (VmRSS after the window and at the end, VmHWM the peak);
- repair: an owned rule (MASQUERADE in nat POSTROUTING) deleted by hand, seconds until it is
  back (median and slowest of 3, each deleted at a random moment between passes); at 0 ports
  on the first backend also the bridge deleted (netlink events). "full reads": how many
  times the firewall was read in full during the rule repairs (on legacy two a repair: the
  pass that finds the rule gone, and the next, which checks the repair in full; on nft none).

The interval is BENCH_WATCH_INTERVAL seconds (default 5, so that `make bench` ends); the
goal is set at 30 s, so the CPU is also given as it would be at 30 s: the same CPU per pass
over passes 30 s apart. Goals: idle <= 1% of one core and <= 100 MB resident at 100,000
ports and a 30 s interval; an owned rule repaired in under a second on nft (events), within
one interval on legacy.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.iptables_scale import spec as scale_spec
from devtools.sandbox import Sandbox, sandbox

SCALES = [int(n) for n in os.environ.get("BENCH_WATCH_SCALE", "0,10000,100000").split(",")]
BACKENDS = os.environ.get("BENCH_WATCH_BACKENDS", "legacy,nft").split(",")
INTERVAL = float(os.environ.get("BENCH_WATCH_INTERVAL", "5"))
PASSES = int(os.environ.get("BENCH_WATCH_PASSES", "10"))
# A directory for each watch's log (its JSON events, with times), to see where a slow repair
# went; unset: the logs are dropped.
LOGS = os.environ.get("BENCH_WATCH_LOGS")
FULL_EVERY = 10
GOAL_INTERVAL = 30.0
REPAIRS = 3
SETTLE = 600.0  # seconds a watch may take to converge 100,000 ports on nft


@dataclass
class Row:
    ports: int
    backend: str
    cpu: float  # CPU seconds per wall second over the idle window
    per_pass: float  # CPU seconds per pass
    rss: float  # MiB, after the idle window
    peak: float  # MiB
    rss_end: float  # MiB, after the repairs (each followed by a full read on legacy)
    repair: float  # seconds, median
    worst: float  # seconds, the slowest repair
    full_reads: int  # firewall reads in full from the first deletion to the end
    bridge: float | None = None  # seconds, median


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime: the process and the children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Watching:
    """A watch started in `box`, read through its metrics file."""

    def __init__(self, box: Sandbox, name: str) -> None:
        self.box, self.name = box, name
        self.metrics = box.base / "watch.prom"
        argv = box.dockyard(
            "watch",
            "SPEC",
            "--interval",
            f"{INTERVAL:g}",
            "--full-every",
            str(FULL_EVERY),
            "--metrics-file",
            str(self.metrics),
            "-o",
            "json",
        )
        log: Any = subprocess.DEVNULL
        if LOGS:
            Path(LOGS).mkdir(parents=True, exist_ok=True)
            log = (Path(LOGS) / f"watch-{name}.log").open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=log,
            env={**os.environ, **box.env},
        )

    def counter(self, prefix: str) -> int:
        try:
            text = self.metrics.read_text()
        except FileNotFoundError:
            return 0
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith(prefix)
        )

    def passes(self) -> int:
        return self.counter('dockyard_passes_total{result="ok"}')

    def glances(self) -> int:
        return self.counter('dockyard_reads_total{read="none"')

    def wait(self, done: Any, limit: float) -> None:
        deadline = time.monotonic() + limit
        while not done():
            if self.proc.poll() is not None:
                raise SystemExit(f"the watch ended (exit {self.proc.returncode})")
            if time.monotonic() > deadline:
                raise SystemExit(f"the watch did not get there within {limit:g}s")
            time.sleep(0.05)

    def next_pass(self, count: int = 1) -> None:
        target = self.passes() + count
        self.wait(lambda: self.passes() >= target, (count + 1) * INTERVAL * 1.2 + SETTLE)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=SETTLE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def until_back(box: Sandbox, argv: list[str], needle: str, limit: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        out = box.run(argv)
        if out.returncode == 0 and needle in out.stdout:
            return time.perf_counter() - started
        time.sleep(0.01)
    raise SystemExit(f"not repaired within {limit:g}s: {argv}")


def measure(n: int, backend: str) -> Row:
    wanted = scale_spec(n)
    wanted["network"]["iptables_backend"] = backend
    with sandbox(wanted, prefix="dky-bwatch") as box:
        w = Watching(box, f"{n}-{backend}")
        try:
            return _measure(box, w, n, backend)
        finally:
            w.stop()


def _measure(box: Sandbox, w: Watching, n: int, backend: str) -> Row:
    w.wait(lambda: w.glances() >= 1, SETTLE)  # converged, read clean, glancing
    pid = w.proc.pid
    w.next_pass()
    before, started = cpu_seconds(pid), time.perf_counter()
    w.next_pass(PASSES)
    used, took = cpu_seconds(pid) - before, time.perf_counter() - started
    rss, peak = memory_mib(pid, "VmRSS"), memory_mib(pid, "VmHWM")
    chain = [f"iptables-{backend}", "-t", "nat", "-S", "POSTROUTING"]
    delete = [f"iptables-{backend}", "-w", "-t", "nat", "-D", "POSTROUTING", "1"]
    repairs, fulls = [], w.counter('dockyard_reads_total{read="full"')
    for _ in range(REPAIRS):
        time.sleep(random.uniform(0, INTERVAL))  # drift comes at any moment
        box.run(delete, check=True)
        deleted = time.time()
        repairs.append(until_back(box, chain, "MASQUERADE", 2 * INTERVAL + SETTLE))
        if LOGS:
            with (Path(LOGS) / f"repairs-{w.name}.log").open("a") as out:
                out.write(f"deleted at {deleted:.3f}, back after {repairs[-1]:.3f} s\n")
        w.next_pass(2)  # the repair's pass, and the one that finds it clean
    fulls = w.counter('dockyard_reads_total{read="full"') - fulls
    bridge = None
    if n == 0 and backend == BACKENDS[0]:
        link = ["ip", "link", "show", "docker0"]
        times = []
        for _ in range(5):
            box.run(["ip", "link", "del", "docker0"], check=True)
            times.append(until_back(box, link, "docker0", 30.0))
            time.sleep(0.5)
        bridge = statistics.median(times)
    median, end = statistics.median(repairs), memory_mib(pid, "VmRSS")
    peak = memory_mib(pid, "VmHWM")
    return Row(
        n, backend, used / took, used / PASSES, rss, peak, end, median, max(repairs), fulls, bridge
    )


def load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    if os.geteuid() != 0:
        print("the watch benchmark creates network namespaces and needs root", file=sys.stderr)
        return 1
    print(
        f"\nwatch mode at scale (interval {INTERVAL:g}s, --full-every {FULL_EVERY}; idle over "
        f"{PASSES} passes; {load()})"
    )
    head = f"{'ports':>8} {'backend':<7}{'idle CPU':>10}{'at 30 s':>9}{'CPU/pass':>10}"
    print(head + f"{'RSS':>8}{'end':>7}{'peak':>8}{'repair':>9}{'slowest':>9}{'full reads':>12}")
    rows = []
    for n in SCALES:
        for backend in BACKENDS:
            r = measure(n, backend)
            rows.append(r)
            at_goal = r.per_pass / GOAL_INTERVAL
            print(
                f"{r.ports:>8,} {r.backend:<7}{r.cpu * 100:>9.2f}%{at_goal * 100:>8.2f}%"
                f"{r.per_pass * 1000:>8.0f}ms{r.rss:>6.0f}MB{r.rss_end:>5.0f}MB{r.peak:>6.0f}MB"
                f"{r.repair:>8.2f}s{r.worst:>8.2f}s{r.full_reads:>12}",
                flush=True,
            )
    for r in rows:
        if r.bridge is not None:
            print(f"bridge deleted -> back: median {r.bridge * 1000:.0f} ms (netlink events)")
    print(
        "goals at 100,000 ports, 30 s: idle <= 1% of one core, <= 100 MB resident; owned rule "
        "repaired < 1 s on nft, within one interval on legacy"
    )
    print(f"({load()} at the end)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
