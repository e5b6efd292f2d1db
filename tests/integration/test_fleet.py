"""The Ansible collection on a simulated fleet: 20 network namespaces as hosts, each with its
own temporary root and its own spec (a bridge MTU and a published port), driven by
ansible-playbook with forks over an inventory of them (devtools/fleet.py)."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.fleet import DRIFTS, Fleet, Member, fleet, mtu_of, port_of

pytestmark = pytest.mark.root

SIZE = 20
BACKENDS = [b for b in ("legacy", "nft") if shutil.which(f"iptables-{b}-save")]


@pytest.fixture
def hosts() -> Iterator[Fleet]:
    with fleet(SIZE) as made:
        yield made


def root_of(m: Member) -> Path:
    return Path(m.spec["root"])


def bridge(m: Member) -> dict[str, Any] | None:
    out = m.box.run(["ip", "-j", "link", "show", "docker0"])
    return json.loads(out.stdout)[0] if out.returncode == 0 else None


def rules(m: Member) -> list[str]:
    """Every rule and chain of both backends, as their save commands print them."""
    lines = []
    for backend in BACKENDS:
        for table in ("nat", "filter"):
            out = m.box.run([f"iptables-{backend}-save", "-t", table]).stdout
            lines += [x for x in out.splitlines() if x.startswith(("-A", ":"))]
    return sorted(x.split(" [")[0] for x in lines)


def snapshot(m: Member) -> dict[str, Any]:
    """What a run could change on a host: the files under its root, links, sysctl, rules."""
    files = {
        str(p.relative_to(m.box.base)): stat.S_IMODE(p.lstat().st_mode)
        for p in m.box.base.rglob("*")
    }
    links = m.box.run(["ip", "-o", "link"]).stdout
    return {
        "files": files,
        "links": links,
        "ip_forward": m.box.sysctl("net.ipv4.ip_forward"),
        "rules": rules(m),
    }


def bridge_diff(result: dict[str, Any]) -> str:
    diffs = [d for d in result.get("diff", []) if d["before_header"] == "+ bridge docker0"]
    return diffs[0]["after"] if diffs else ""


def test_a_fleet_is_planned_converged_kept_repaired_and_torn_down(hosts: Fleet) -> None:
    everyone = hosts.names

    before = {m.name: snapshot(m) for m in hosts.members}
    check = hosts.playbook("--check", "--diff")
    assert check.returncode == 0, check.output
    assert set(check.results) == everyone
    assert check.changed() == everyone, "check mode says what a run would change"
    for m in hosts.members:
        assert f"mtu: {mtu_of(m.index)}" in bridge_diff(check.results[m.name])
        assert "+ bridge docker0" in check.results[m.name]["drift"]
        assert snapshot(m) == before[m.name], f"check mode changed {m.name}"

    first = hosts.playbook()
    assert first.returncode == 0, first.output
    assert first.changed() == everyone
    for m in hosts.members:
        assert first.results[m.name]["plan"]["converged"] is True
        assert first.results[m.name]["plan"]["format_version"] == 1
        link = bridge(m)
        assert link is not None and link["mtu"] == mtu_of(m.index), m.name
        dnat = [x for x in rules(m) if f"--dport {port_of(m.index)} -j DNAT" in x]
        assert len(dnat) == 1, (m.name, rules(m))

    second = hosts.playbook()
    assert second.returncode == 0, second.output
    assert second.changed() == set(), "a converged fleet changes nothing"
    assert all(r["drift"] == [] for r in second.results.values())

    drifted = {hosts.members[i].name: drift.shows for i, drift in DRIFTS.items()}
    converged = {m.name: snapshot(m) for m in hosts.members}
    for i, drift in DRIFTS.items():
        drift.make(hosts.members[i])
    repair = hosts.playbook()
    assert repair.returncode == 0, repair.output
    assert repair.changed() == set(drifted), "drift is repaired on exactly the drifted hosts"
    for name, expected in drifted.items():
        assert any(line.startswith(expected) for line in repair.results[name]["drift"]), (
            name,
            repair.results[name]["drift"],
        )
    for m in hosts.members:
        assert snapshot(m) == converged[m.name], f"{m.name} is not as it was before the drift"

    down = hosts.playbook(extra_vars={"dockyard_state": "absent"})
    assert down.returncode == 0, down.output
    assert down.changed() == everyone
    for m in hosts.members:
        assert bridge(m) is None, m.name
        # Only the daemon's empty DOCKER chains stay: they are never dockyard's to remove.
        left = [x for x in rules(m) if "DOCKER" in x or "DOCKYARD" in x]
        assert all(x == ":DOCKER ACCEPT" or x.startswith(":DOCKER -") for x in left), left
        assert not [x for x in left if x.startswith("-A")], (m.name, left)
        assert (root_of(m) / "graph").is_dir(), "data is never removed"

    again = hosts.playbook(extra_vars={"dockyard_state": "absent"})
    assert again.returncode == 0, again.output
    assert again.changed() == set()


def test_an_invalid_spec_fails_with_every_located_problem() -> None:
    bad = {"version": 1, "network": {"bridge": {"mtu": 10, "nmae": "br0"}}}
    with fleet(1) as one:
        before = snapshot(one.members[0])
        run = one.playbook(extra_vars={"dockyard_spec": bad})
        after = snapshot(one.members[0])
    assert run.returncode != 0
    result = run.results["h000"]
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == "the spec is not valid"
    problems = result["spec_errors"]
    assert len(problems) == 2, problems
    assert any(p.startswith("<inline spec>:") and "network.bridge.mtu:" in p for p in problems)
    assert any("network.bridge.nmae: unknown field; did you mean 'name'?" in p for p in problems)
    assert before == after


def test_a_failed_check_fails_the_task_and_changes_nothing(tmp_path: Path) -> None:
    """The spec from a file on the host (`path:`), asking for a kernel no host has."""
    with fleet(1) as one:
        host = one.members[0]
        host.box.write_spec({"version": 1, "preflight": {"min_kernel": "99.0"}})
        task = {
            "dockyard.host.reconcile": {"path": str(host.box.spec_path)},
            "environment": "{{ dockyard_environment }}",
        }
        playbook = tmp_path / "from-file.yml"
        play = {"hosts": "all", "gather_facts": False, "tasks": [task]}
        playbook.write_text(yaml.safe_dump([play]))
        before = snapshot(host)
        check = one.ansible.playbook(one.inventory, playbook, "--check")
        run = one.ansible.playbook(one.inventory, playbook)
        after = snapshot(host)
    planned, applied = check.results["h000"], run.results["h000"]
    assert planned["failed"] is True
    assert planned["msg"].startswith("a run would fail before changing anything: preflight: ")
    assert applied["failed"] is True and applied["changed"] is False
    assert applied["msg"].startswith("nothing was changed: preflight: ")
    assert applied["plan"]["converged"] is False
    assert before == after
