"""`make demo`: dockyard on a throwaway network namespace and temporary root.

Shows the plan for examples/docker-default.yaml, applies it, shows that a second run changes
nothing, makes the host drift by hand and lets dockyard repair it, takes down what dockyard
owns, then removes everything.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import yaml

from devtools.sandbox import Sandbox, sandbox

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "docker-default.yaml"


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m" if sys.stdout.isatty() else f"\n==> {text}", flush=True)


def step(box: Sandbox, *args: str) -> int:
    shown = " ".join("spec.yaml" if a == "SPEC" else shlex.quote(a) for a in args)
    print(f"$ reconcile {shown}", flush=True)
    result = box.reconcile(*args)
    sys.stdout.write(result.stdout)
    for line in result.stderr.splitlines():
        print(f"  | {line}")
    print(f"(exit code {result.returncode})", flush=True)
    return result.returncode


def main() -> int:
    if os.geteuid() != 0:
        print(
            "make demo creates a network namespace and needs root: sudo make demo", file=sys.stderr
        )
        return 1
    spec = yaml.safe_load(EXAMPLE.read_text())
    with sandbox(spec, prefix="dky-demo") as box:
        say(f"A throwaway host: network namespace {box.ns}, temporary root {box.base}")
        print(f"The spec is {EXAMPLE.name} with its paths moved under the temporary root:")
        for key in ("root", "pidfile", "state_dir"):
            print(f"  {key}: {box.spec[key]}")

        say("What would change? (--detailed-exitcode: exit 2 means changes are pending)")
        step(box, "plan", "SPEC", "--detailed-exitcode")

        say("Apply it. Progress goes to stderr (shown with |), the result to stdout.")
        if step(box, "SPEC") != 0:
            return 1

        say("Run it again: a converged host needs nothing.")
        step(box, "SPEC", "--detailed-exitcode")

        say(
            "Drift by hand: chmod 0755 <root>/graph, ip_forward back to 0, a stale pid file, "
            "docker0 down, the MASQUERADE rule deleted."
        )
        box.path(box.spec["root"].removeprefix(str(box.base)) + "/graph").chmod(0o755)
        box.set_sysctl("net.ipv4.ip_forward", "0")
        box.run(["ip", "link", "set", "docker0", "down"], check=True)
        box.run(["iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "1"], check=True)
        box.path(box.spec["pidfile"].removeprefix(str(box.base))).write_text("999999\n")
        step(box, "plan", "SPEC", "--detailed-exitcode")

        say("Repair it.")
        step(box, "SPEC")
        step(box, "plan", "SPEC")

        say("Take down what dockyard owns at run time (rules, chains, its bridge); data stays.")
        step(box, "down", "SPEC")

        say(f"Cleaning up: deleting {box.ns} and {box.base}")
    print("Done.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
