"""The Ansible collection on a simulated fleet: hosts per second, and what Ansible adds per host.

BENCH_FLEET_HOSTS (default 200) network namespaces as hosts (devtools/fleet.py), driven by
ansible-playbook with BENCH_FLEET_FORKS forks (default 20). Printed:
- the fleet's converge (fresh hosts) and no-op runs: seconds, hosts per second, and CPU seconds
  per host (everything the run started: ansible-playbook, its workers, the modules);
- Ansible's own cost per host, the same fleet running `ansible.builtin.ping`;
- a bare `reconcile SPEC` in one namespace, converge and no-op, the same way;
- the per-host cost of the module one host after another (forks 1): the time one more host
  adds to a run, (run over 1 + K hosts - run over 1 host) / K, against the bare no-op.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from devtools.fleet import GROUP, Fleet, Run, fleet, host_spec, tool
from devtools.sandbox import sandbox

HOSTS = int(os.environ.get("BENCH_FLEET_HOSTS", "200"))
FORKS = int(os.environ.get("BENCH_FLEET_FORKS", "20"))
SEQUENTIAL = 10  # K: hosts added one after another for the per-host cost


@dataclass
class Cost:
    seconds: float
    cpu: float  # user + system seconds of every process it started


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(action: Callable[[], object]) -> Cost:
    cpu, started = children_cpu(), time.perf_counter()
    action()
    return Cost(time.perf_counter() - started, children_cpu() - cpu)


def checked(run: Run, changed: int) -> Run:
    if run.returncode != 0 or len(run.changed()) != changed:
        raise SystemExit(f"fleet run went wrong ({len(run.changed())} changed):\n{run.output}")
    return run


def bare() -> tuple[Cost, Cost]:
    """`reconcile SPEC` in one namespace: a fresh converge, then the median no-op."""
    with sandbox(host_spec(0), prefix="dky-fbench") as box:
        argv = box.dockyard("SPEC")
        env = {**os.environ, **box.env}

        def run() -> None:
            subprocess.run(argv, check=True, capture_output=True, env=env)

        fresh = measured(run)
        noops = [measured(run) for _ in range(7)]
    return fresh, Cost(
        statistics.median(c.seconds for c in noops), statistics.median(c.cpu for c in noops)
    )


def sequential(hosts: Fleet) -> float:
    """Seconds one more host adds to a no-op run, one host after another."""
    names = sorted(hosts.names)

    def run(k: int) -> float:
        limit = ",".join(names[: 1 + k])
        result = checked(hosts.playbook("--forks", "1", "--limit", limit), 0)
        return result.seconds

    one = statistics.median(run(0) for _ in range(3))
    more = statistics.median(run(SEQUENTIAL) for _ in range(3))
    return (more - one) / SEQUENTIAL


def ping(hosts: Fleet) -> None:
    """`ansible -m ping` over the fleet: what any module costs a host through Ansible."""
    argv = [tool("ansible"), "-i", str(hosts.inventory), GROUP, "-m", "ansible.builtin.ping"]
    env = hosts.ansible.env(hosts.ansible.workdir / "ping")
    subprocess.run(argv, check=True, capture_output=True, env=env)


def main() -> int:
    if os.geteuid() != 0:
        print("the fleet benchmark creates network namespaces and needs root", file=sys.stderr)
        return 1
    print(f"\nfleet: {HOSTS} network namespaces as hosts, ansible-playbook with {FORKS} forks")
    fresh, noop = bare()
    with fleet(HOSTS, forks=FORKS, prefix="dky-fbench") as hosts:
        first = measured(lambda: checked(hosts.playbook(), HOSTS))
        again = measured(lambda: checked(hosts.playbook(), 0))
        pinged = measured(lambda: ping(hosts))
        per_host = sequential(hosts)
    print(f"{'':<34}{'seconds':>9}{'hosts/s':>9}{'CPU s/host':>12}")
    fleet_runs = (
        ("fleet converge, fresh hosts", first),
        ("fleet no-op", again),
        ("fleet ansible.builtin.ping", pinged),
    )
    for label, cost in fleet_runs:
        rate = HOSTS / cost.seconds
        print(f"{label:<34}{cost.seconds:>9.1f}{rate:>9.1f}{cost.cpu / HOSTS:>12.2f}")
    for label, cost in (("bare reconcile, fresh host", fresh), ("bare reconcile, no-op", noop)):
        print(f"{label:<34}{cost.seconds:>9.2f}{'':>9}{cost.cpu:>12.2f}")
    print(
        f"one host after another (forks 1): {per_host:.2f} s per host with the module, "
        f"{noop.seconds:.2f} s for a bare no-op: Ansible adds {per_host - noop.seconds:.2f} s "
        f"({per_host / noop.seconds:.1f}x)"
    )
    print(
        f"CPU per host, no-op: {again.cpu / HOSTS:.2f} s through Ansible, {noop.cpu:.2f} s bare "
        f"({again.cpu / HOSTS / noop.cpu:.1f}x); Ansible's ping alone: {pinged.cpu / HOSTS:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
