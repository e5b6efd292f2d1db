"""dockyard's docker-default converge beside the tools users would pick instead.

The same target state — Docker 1.x's default host: directories, the bridge docker0 with
Docker's first address, its NAT and FORWARD rules, ip_forward, the containers' resolv.conf,
the storage layout and tag store, the link graph — reached four ways, each in a fresh
network namespace and temporary root per run:

- dockyard: `reconcile SPEC` with the docker-default spec, the console script as users install
  it (`pip install .`; BENCH_RECONCILE names it);
- bench/baseline.sh: the same steps as a plain shell script, no checks of its own;
- pyinfra: bench/docker_default/pyinfra_deploy.py, `pyinfra @local … -y`;
- Ansible: bench/docker_default/playbook.yml, local connection, no fact gathering.

pyinfra and ansible-core live in their own environment (.venv-bench, which `make bench`
installs from bench/docker_default/requirements.txt), never in dockyard's. Every run is
verified: the host it leaves is compared with the one dockyard leaves (bench/hoststate.py),
and a no-op run must report no change (dockyard, pyinfra and Ansible each say how many
changes they made; the shell script cannot). A run that fails either check fails the bench.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import hoststate
from devtools.sandbox import Sandbox, sandbox

HERE = Path(__file__).resolve().parent
TARGET = HERE / "docker_default"
VENV = Path(os.environ.get("BENCH_PEERS_VENV", HERE.parent / ".venv-bench")).resolve()
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
# dockyard as users run it: the console script of a `pip install .` (README, "Running it for
# real"; `make bench` makes that environment); by default this environment's console script.
RECONCILE = os.environ.get("BENCH_RECONCILE") or str(Path(sys.executable).with_name("reconcile"))
# An Ansible run takes tens of seconds here: fewer runs give a median as steady.
ANSIBLE_RUNS = int(os.environ.get("BENCH_ANSIBLE_RUNS", "3"))
PREFIX = "dky-peer"

Reported = Callable[[str], int | None]


class PeerFailure(Exception):
    """A tool failed, left another host than dockyard's, or changed something on a no-op."""


def dockyard_changes(out: str) -> int | None:
    if "No changes." in out:
        return 0
    done = re.search(r"(\d+) created, (\d+) updated, (\d+) deleted", out)
    return sum(int(n) for n in done.groups()) if done else None


def pyinfra_changes(out: str) -> int | None:
    """The 'Success' column of pyinfra's 'Grand total' row: operations that changed
    something (those that found nothing to do count under 'No Change')."""
    for line in out.splitlines():
        fields = line.split()
        if fields[:2] == ["Grand", "total"]:
            success, error = fields[-3], fields[-2]
            if error not in ("-", "0"):
                return None
            return 0 if success == "-" else int(success)
    return None


def ansible_changes(out: str) -> int | None:
    recap = re.search(r"changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    if recap is None or recap.group(2) != "0" or recap.group(3) != "0":
        return None
    return int(recap.group(1))


@dataclass(frozen=True)
class Tool:
    name: str
    argv: Callable[[Sandbox], list[str]]
    changes: Reported | None  # None: the tool cannot tell
    runs: int = RUNS
    env: dict[str, str] = field(default_factory=dict)
    peer: bool = True


def _paths(box: Sandbox) -> tuple[str, str, str]:
    spec = box.spec
    return spec["root"], spec["pidfile"], spec["dns"]["host_resolv_conf"]


def _dockyard(box: Sandbox) -> list[str]:
    return [RECONCILE, str(box.spec_path)]


def _baseline(box: Sandbox) -> list[str]:
    return ["sh", str(HERE / "baseline.sh"), *_paths(box)]


def _pyinfra(box: Sandbox) -> list[str]:
    root, pidfile, resolv = _paths(box)
    data = {"root": root, "pidfile": pidfile, "resolv_conf": resolv}
    pairs = [arg for key, value in data.items() for arg in ("--data", f"{key}={value}")]
    return [str(VENV / "bin/pyinfra"), "@local", str(TARGET / "pyinfra_deploy.py"), "-y", *pairs]


def _ansible(box: Sandbox) -> list[str]:
    root, pidfile, resolv = _paths(box)
    extra = json.dumps({"root": root, "pidfile": pidfile, "resolv_conf": resolv})
    return [
        str(VENV / "bin/ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        str(TARGET / "playbook.yml"),
        "-e",
        extra,
    ]


TOOLS = (
    Tool("dockyard", _dockyard, dockyard_changes, peer=False),
    Tool("baseline.sh", _baseline, None, peer=False),
    Tool("pyinfra", _pyinfra, pyinfra_changes),
    Tool(
        "ansible-playbook",
        _ansible,
        ansible_changes,
        runs=ANSIBLE_RUNS,
        env={"ANSIBLE_CONFIG": str(TARGET / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    ),
)


def _environment(tool: Tool, box: Sandbox) -> dict[str, str]:
    env = {**os.environ, **box.env, **tool.env}
    env.pop("PYTHONPATH", None)  # each tool runs what its environment holds, not this checkout
    return env


def timed_run(tool: Tool, box: Sandbox) -> tuple[float, int | None]:
    """Seconds the whole process took, and the changes it reports."""
    started = time.perf_counter()
    done = subprocess.run(
        ["ip", "netns", "exec", box.ns, *tool.argv(box)],
        capture_output=True,
        text=True,
        env=_environment(tool, box),
        check=False,
    )
    elapsed = time.perf_counter() - started
    out = done.stdout + done.stderr
    if done.returncode != 0:
        raise PeerFailure(f"{tool.name} exited {done.returncode}:\n{out[-3000:]}")
    changes = tool.changes(out) if tool.changes else None
    if tool.changes and changes is None:
        raise PeerFailure(f"{tool.name}: cannot tell what it changed from:\n{out[-3000:]}")
    return elapsed, changes


def verify(tool: Tool, box: Sandbox, reference: hoststate.State, what: str) -> None:
    wrong = hoststate.differences(reference, hoststate.snapshot(box))
    if wrong:
        raise PeerFailure(
            f"{tool.name} ({what}) left another host than dockyard:\n" + "\n".join(wrong)
        )


def reference_state() -> hoststate.State:
    """The host dockyard leaves: what every run of every tool is compared with."""
    with sandbox({"version": 1}, prefix=PREFIX) as box:
        timed_run(TOOLS[0], box)
        return hoststate.snapshot(box)


def from_scratch(tools: tuple[Tool, ...], reference: hoststate.State) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {tool.name: [] for tool in tools}
    for round_ in range(max(tool.runs for tool in tools)):
        for tool in tools:  # one run of each in turn, so that a busy moment hits all alike
            if round_ >= tool.runs:
                continue
            with sandbox({"version": 1}, prefix=PREFIX) as box:
                elapsed, changes = timed_run(tool, box)
                if changes == 0:
                    raise PeerFailure(f"{tool.name} reported no change on a fresh host")
                verify(tool, box, reference, "from scratch")
            times[tool.name].append(elapsed)
    return times


def no_op(tools: tuple[Tool, ...], reference: hoststate.State) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {tool.name: [] for tool in tools}
    with contextlib.ExitStack() as stack:
        boxes = {t.name: stack.enter_context(sandbox({"version": 1}, prefix=PREFIX)) for t in tools}
        for tool in tools:
            timed_run(tool, boxes[tool.name])
        for round_ in range(max(tool.runs for tool in tools)):
            for tool in tools:
                if round_ >= tool.runs:
                    continue
                elapsed, changes = timed_run(tool, boxes[tool.name])
                if changes:
                    raise PeerFailure(f"{tool.name} reported {changes} change(s) on a no-op run")
                verify(tool, boxes[tool.name], reference, "no-op")
                times[tool.name].append(elapsed)
    return times


def _shown(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


# (peer, measure, goal): dockyard at least `goal` times faster than the peer, or, for the
# baseline, at most `goal` times slower.
GOALS = (
    ("pyinfra", "from scratch", 4.0),
    ("pyinfra", "no-op", 4.0),
    ("ansible-playbook", "from scratch", 25.0),
    ("ansible-playbook", "no-op", 25.0),
    ("baseline.sh", "from scratch", 3.0),
    ("baseline.sh", "no-op", 4.0),
)


def report(medians: dict[str, dict[str, float]]) -> list[str]:
    names = [tool.name for tool in TOOLS]
    lines = [f"{'docker-default':<16}" + "".join(f"{name:>18}" for name in names)]
    for measure, row in medians.items():
        lines.append(f"{measure:<16}" + "".join(f"{_shown(row[name]):>18}" for name in names))
    lines.append("")
    for peer, measure, goal in GOALS:
        ours, theirs = medians[measure]["dockyard"], medians[measure][peer]
        if peer == "baseline.sh":
            ratio, wanted = ours / theirs, f"dockyard <= {goal:g}x {peer}"
            met = ratio <= goal
        else:
            ratio, wanted = theirs / ours, f"dockyard >= {goal:g}x faster than {peer}"
            met = ratio >= goal
        verdict = "met" if met else "MISSED"
        lines.append(f"{measure:<14}{ratio:>7.1f}x   goal: {wanted:<48} {verdict}")
    return lines


def main() -> int:
    for exe in ("pyinfra", "ansible-playbook"):
        if not (VENV / "bin" / exe).exists():
            print(f"peers: {VENV}/bin/{exe} is missing; `make bench` installs it", file=sys.stderr)
            return 1
    print(
        f"\ndocker-default beside its peers: medians of {RUNS} runs ({ANSIBLE_RUNS} for Ansible), "
        "whole processes, a fresh namespace and root per run, every run verified against "
        f"the host dockyard leaves; load average at the start: {_load()}"
    )
    try:
        reference = reference_state()
        scratch = from_scratch(TOOLS, reference)
        idle = no_op(TOOLS, reference)
    except PeerFailure as failure:
        print(f"peers: {failure}", file=sys.stderr)
        return 1
    medians = {
        "from scratch": {name: statistics.median(ts) for name, ts in scratch.items()},
        "no-op": {name: statistics.median(ts) for name, ts in idle.items()},
    }
    print("\n".join(report(medians)))
    print(f"load average at the end: {_load()} (2 cores: above 2, other work was running)")
    return 0


def _load() -> str:
    return " ".join(f"{n:.1f}" for n in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
