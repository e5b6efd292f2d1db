"""`make fleet-demo`: the Ansible collection on a simulated fleet of network namespaces.

N hosts (20 unless `make fleet-demo FLEET_HOSTS=N`), each a network namespace with its own
temporary root and its own spec (a bridge MTU and a published port). ansible-playbook drives
them all with forks: the plan in check mode, a converge, a run that changes nothing, drift made
by hand on a few hosts and repaired on exactly those, a rollout in batches, and a teardown.
Every namespace is deleted by name at the end, also when a step fails.
"""

from __future__ import annotations

import os
import sys

from devtools.demo import say
from devtools.fleet import DRIFTS, Fleet, Run, fleet, mtu_of, port_of


def expect(run: Run, changed: set[str], what: str) -> bool:
    failed = run.failed()
    ok = run.returncode == 0 and not failed and run.changed() == changed
    rate = len(run.results) / run.seconds if run.seconds else 0.0
    verdict = "as expected" if ok else "NOT AS EXPECTED"
    print(
        f"--> {what}: {len(run.changed())} changed, {len(failed)} failed, "
        f"{run.seconds:.1f} s ({rate:.1f} hosts/s): {verdict}",
        flush=True,
    )
    return ok


def bridges(hosts: Fleet) -> int:
    return sum(m.box.run(["ip", "link", "show", "docker0"]).returncode == 0 for m in hosts.members)


def main() -> int:
    if os.geteuid() != 0:
        print("make fleet-demo creates network namespaces and needs root", file=sys.stderr)
        return 1
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with fleet(size, prefix="dky-fdemo") as hosts:
        return steps(hosts, size)


def steps(hosts: Fleet, size: int) -> int:
    everyone = hosts.names
    first, last = hosts.members[0], hosts.members[-1]
    say(f"A fleet of {size} hosts: one network namespace and temporary root each")
    print(f"inventory: {hosts.inventory}; playbook: integrations/ansible/playbooks/converge.yml")
    for m in (first, last):
        print(
            f"  {m.name}: namespace {m.box.ns}, root {m.spec['root']}, "
            f"bridge MTU {mtu_of(m.index)}, published port {port_of(m.index)}"
        )
    ok = True

    say(f"What would change on {first.name}: check mode with --diff")
    hosts.playbook("--check", "--diff", "--limit", first.name, echo=True)

    say("Check mode on the whole fleet: every host would change, none does")
    ok &= expect(hosts.playbook("--check"), everyone, "check mode")
    print(f"--> hosts with a docker0 bridge afterwards: {bridges(hosts)}")
    ok &= bridges(hosts) == 0

    say(f"Converge every host (forks = {size})")
    ok &= expect(hosts.playbook(), everyone, "first run")
    print(f"--> hosts with a docker0 bridge: {bridges(hosts)}")

    say("Run it again: a converged fleet changes nothing")
    ok &= expect(hosts.playbook(), set(), "second run")

    drifted = {i: d for i, d in DRIFTS.items() if i < size}
    say("Drift by hand on " + ", ".join(f"h{i:03d} ({d.what})" for i, d in drifted.items()))
    for i, drift in drifted.items():
        drift.make(hosts.members[i])
    repair = hosts.playbook()
    ok &= expect(repair, {hosts.members[i].name for i in drifted}, "repair")
    for i in drifted:
        name = hosts.members[i].name
        print(f"    {name}: {'; '.join(repair.results[name]['drift'])}")

    say("A rollout in batches of a quarter of the fleet (-e dockyard_serial=25%)")
    ok &= expect(hosts.playbook(extra_vars={"dockyard_serial": "25%"}), set(), "batches")

    say("Take down what dockyard owns (-e dockyard_state=absent); data stays")
    ok &= expect(hosts.playbook(extra_vars={"dockyard_state": "absent"}), everyone, "down")
    print(f"--> hosts with a docker0 bridge: {bridges(hosts)}")
    ok &= bridges(hosts) == 0

    say(f"Cleaning up: deleting the {size} namespaces and their roots")
    print("Done." if ok else "Done, but some step was NOT AS EXPECTED.")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
