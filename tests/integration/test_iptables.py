"""The firewall against the real kernel, on both backends, in namespaces the tests create."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.sandbox import Sandbox
from dockyard.reconcilers.iptables import rules, save
from dockyard.spec import Spec

pytestmark = pytest.mark.root

BACKENDS = [b for b in ("legacy", "nft") if shutil.which(f"iptables-{b}-save")]
DOCKER_RULES = {
    "nat": [
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKYARD",
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKYARD",
        "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
        "-A POSTROUTING -s 172.17.0.0/16 -d 172.17.0.0/16 -o docker0 -j DOCKYARD-HAIRPIN",
    ],
    "filter": [
        "-A FORWARD -j DOCKER-USER",
        "-A FORWARD -o docker0 -j DOCKYARD",
        "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
        "-A FORWARD -i docker0 -o docker0 -j ACCEPT",
    ],
}


@pytest.fixture(params=BACKENDS)
def fw(request: pytest.FixtureRequest, box_factory: Any) -> Iterator[Firewall]:
    yield Firewall(box_factory(), request.param)


class Firewall:
    def __init__(self, box: Sandbox, backend: str) -> None:
        self.box, self.backend = box, backend
        self.spec({})

    def spec(self, network: dict[str, Any]) -> None:
        self.box.write_spec(
            {"version": 1, "network": {"iptables_backend": self.backend, **network}}
        )

    def iptables(self, *args: str) -> None:
        result = self.box.run([f"iptables-{self.backend}", "-w", *args])
        assert result.returncode == 0, result.stderr

    def save(self, table: str) -> list[str]:
        """Chains (without their packet counters) and rules, as iptables-save prints them."""
        out = self.box.run([f"iptables-{self.backend}-save", "-t", table]).stdout
        lines = [line for line in out.splitlines() if line.startswith(("-A", ":"))]
        return [line.rsplit(" [", 1)[0] if line.startswith(":") else line for line in lines]

    def rules(self, table: str, ours: bool | None = None) -> list[str]:
        """Rule lines; ours=True: dockyard's with their comment cut out; False: foreign only.
        Every rule in a DOCKYARD chain is dockyard's; elsewhere, those with its comment."""
        own = ("-A DOCKYARD ", "-A DOCKYARD-HAIRPIN ")
        out = []
        for line in self.save(table):
            if not line.startswith("-A"):
                continue
            mine = "dockyard:" in line or line.startswith(own)
            if ours is None or ours == mine:
                if "dockyard:" in line:
                    head, _, rest = line.partition(' -m comment --comment "dockyard:')
                    line = head + rest.split('"', 1)[1]
                out.append(line)
        return out

    def chains(self, table: str) -> list[str]:
        return [line[1:].split()[0] for line in self.save(table) if line.startswith(":")]

    def converge(self) -> subprocess.CompletedProcess[str]:
        result = self.box.reconcile("SPEC")
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def plan(self) -> tuple[int, str]:
        result = self.box.reconcile("plan", "SPEC", "--detailed-exitcode")
        return result.returncode, result.stdout


def test_from_nothing_exactly_dockers_rules_in_order(fw: Firewall) -> None:
    fw.converge()
    for table, expected in DOCKER_RULES.items():
        assert fw.rules(table, ours=True) == expected
        assert fw.rules(table, ours=False) == []
    # The daemon's chains are made for it, empty; dockyard's own hold what it publishes.
    assert {"DOCKER", "DOCKYARD", "DOCKYARD-HAIRPIN"} <= set(fw.chains("nat"))
    assert {"DOCKER", "DOCKYARD", "DOCKER-USER"} <= set(fw.chains("filter"))
    assert fw.plan() == (0, "No changes. The host matches the spec.\n")
    # Stamped before the commit: a run that read the tables ahead knows its read is stale.
    assert fw.box.path("/var/lib/dockyard/iptables.written").is_file()


def test_the_other_backend_is_left_empty(fw: Firewall) -> None:
    fw.converge()
    other = next((b for b in BACKENDS if b != fw.backend), None)
    if other is None:
        pytest.skip("only one backend installed")
    out = fw.box.run([f"iptables-{other}-save"]).stdout
    assert "dockyard" not in out


def test_icc_false_drops_traffic_between_containers(fw: Firewall) -> None:
    fw.spec({"icc": False})
    fw.converge()
    assert fw.rules("filter", ours=True)[-1] == "-A FORWARD -i docker0 -o docker0 -j DROP"
    fw.spec({"icc": True})
    fw.converge()
    assert fw.rules("filter", ours=True)[-1] == "-A FORWARD -i docker0 -o docker0 -j ACCEPT"


def test_ip_masq_false_has_no_masquerade(fw: Firewall) -> None:
    fw.spec({"ip_masq": False})
    fw.converge()
    assert fw.rules("nat", ours=True) == [r for r in DOCKER_RULES["nat"] if "MASQUERADE" not in r]


def test_published_ports(fw: Firewall) -> None:
    fw.spec(
        {
            "published_ports": [
                {"host_port": 8080, "container_ip": "172.17.0.2", "container_port": 80},
                {
                    "proto": "UDP",
                    "host_ip": "127.0.0.1",
                    "host_port": 5353,
                    "container_ip": "172.17.0.3",
                    "container_port": 53,
                },
            ]
        }
    )
    fw.converge()
    assert [r for r in fw.rules("nat", ours=True) if r.startswith("-A DOCKYARD ")] == [
        "-A DOCKYARD ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT "
        "--to-destination 172.17.0.2:80",
        "-A DOCKYARD -d 127.0.0.1/32 ! -i docker0 -p udp -m udp --dport 5353 -j DNAT "
        "--to-destination 172.17.0.3:53",
    ]
    assert [r for r in fw.rules("filter", ours=True) if r.startswith("-A DOCKYARD")] == [
        "-A DOCKYARD -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT",
        "-A DOCKYARD -d 172.17.0.3/32 ! -i docker0 -o docker0 -p udp -m udp --dport 53 -j ACCEPT",
    ]
    # Docker 1.5+'s hairpin NAT, one rule per container port, in dockyard's own chain.
    assert [r for r in fw.rules("nat", ours=True) if r.startswith("-A DOCKYARD-HAIRPIN")] == [
        "-A DOCKYARD-HAIRPIN -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 "
        "-j MASQUERADE",
        "-A DOCKYARD-HAIRPIN -s 172.17.0.3/32 -d 172.17.0.3/32 -p udp -m udp --dport 53 "
        "-j MASQUERADE",
    ]
    assert fw.plan()[0] == 0
    shown = json.loads(fw.box.reconcile("show", "SPEC", "-o", "json").stdout)
    # 4 in nat's built-in chains, 5 in FORWARD, and 2 in each of dockyard's three chains
    assert shown["observed"]["iptables"]["planned"]["dockyard_rules"] == 15


def mappings(n: int, host: int, container: int) -> list[dict[str, Any]]:
    """n published ports to one container, from consecutive host and container ports."""
    return [
        {"host_port": host + i, "container_ip": "172.17.0.2", "container_port": container + i}
        for i in range(n)
    ]


def _plan_one_changed_mapping(fw: Firewall, count: int, index: int) -> dict[str, Any]:
    """`count` mappings converged, then mapping `index` sent to another container port: the
    plan, as JSON."""
    ports = mappings(count, host=8000, container=1000)
    fw.spec({"published_ports": ports})
    fw.converge()
    ports[index] = {**ports[index], "container_port": 9999}
    fw.spec({"published_ports": ports})
    doc: dict[str, Any] = json.loads(fw.box.reconcile("plan", "SPEC", "-o", "json").stdout)
    return doc


def _holds_the_spec_in_order(fw: Firewall) -> None:
    """dockyard's own chains hold the spec's rules in its order, and nothing is left to do."""
    spec = Spec.model_validate(yaml.safe_load(fw.box.spec_path.read_text()))
    own = rules.wanted(spec, ipaddress.IPv4Network("172.17.0.0/16")).own
    for (table, chain), lines in own.items():
        held = [r for r in fw.save(table) if r.startswith(f"-A {chain} ")]
        assert held == [f"-A {chain} {line}" for line in lines], chain
    assert fw.plan()[0] == 0


def test_one_changed_mapping_touches_only_its_rules_and_keeps_the_spec_order(
    fw: Firewall,
) -> None:
    """Its DNAT, its ACCEPT and its hairpin MASQUERADE, each one delete and one insert where
    the spec has them, not at the end: the kernel's chains stay the wanted blocks, which the
    next run compares as one string each."""
    doc = _plan_one_changed_mapping(fw, 20, 7)
    assert doc["summary"] == {"create": 3, "update": 0, "delete": 3}
    placed = [(c["action"], c["before"] or c["after"]) for c in doc["changes"]]
    assert placed == [("delete", {"position": 8}), ("create", {"position": 8})] * 3
    fw.converge()
    _holds_the_spec_in_order(fw)


@pytest.mark.skipif("nft" not in BACKENDS, reason="needs iptables-nft")
def test_on_nft_one_changed_mapping_in_a_large_chain_writes_it_again(box_factory: Any) -> None:
    """iptables-nft reads a whole chain to delete a rule by its text: past BULK rules, each of
    dockyard's chains that loses a rule is flushed and written again in one commit, in the
    spec's order, and the next run finds nothing to do."""
    fw = Firewall(box_factory(), "nft")
    doc = _plan_one_changed_mapping(fw, 60, 30)
    assert [(c["resource"], c["action"], c["reason"]) for c in doc["changes"]] == [
        (f"rules {table} {chain}", "update", "1 missing, 1 not in the spec")
        for table, chain in (
            ("nat", "DOCKYARD"),
            ("nat", "DOCKYARD-HAIRPIN"),
            ("filter", "DOCKYARD"),
        )
    ]
    fw.converge()
    _holds_the_spec_in_order(fw)


def test_bridge_none_installs_nothing(fw: Firewall) -> None:
    fw.box.write_spec({"version": 1, "network": {"bridge": {"name": "none"}}})
    fw.converge()
    assert fw.rules("nat") == [] and fw.rules("filter") == []
    assert "DOCKER" not in fw.chains("nat") and "DOCKYARD" not in fw.chains("nat")


FOREIGN = [
    ("FORWARD", "1", "-s 10.0.0.1/32 -j ACCEPT"),
    ("FORWARD", "4", "-s 10.0.0.2/32 -j DROP"),
    ("FORWARD", None, "-s 10.0.0.3/32 -j ACCEPT"),
]


def add_foreign(fw: Firewall) -> None:
    """Foreign rules before, between and after ours, and in nat and DOCKER-USER too."""
    for chain, position, rule in FOREIGN:
        if position is None:
            fw.iptables("-A", chain, *rule.split())
        else:
            fw.iptables("-I", chain, position, *rule.split())
    fw.iptables("-t", "nat", "-I", "POSTROUTING", "1", "-s", "10.9.0.0/16", "-j", "MASQUERADE")
    fw.iptables("-A", "DOCKER-USER", "-s", "192.0.2.66/32", "-j", "DROP")


def foreign_view(fw: Firewall) -> dict[str, list[str]]:
    return {t: fw.rules(t, ours=False) for t in ("nat", "filter")}


def test_foreign_rules_survive_every_run_unchanged(fw: Firewall) -> None:
    fw.converge()
    add_foreign(fw)
    before = foreign_view(fw)
    assert len(before["filter"]) == 4
    for _ in range(2):
        fw.converge()
        assert foreign_view(fw) == before
    fw.iptables("-D", "FORWARD", "2")  # drift among ours, then repair around the foreign ones
    fw.converge()
    assert foreign_view(fw) == before
    assert fw.rules("filter", ours=True) == DOCKER_RULES["filter"]


def test_a_rule_put_by_hand_into_our_chain_is_shown_and_removed(fw: Firewall) -> None:
    fw.converge()
    fw.iptables("-t", "nat", "-A", "DOCKYARD", "-p", "tcp", "--dport", "9", "-j", "RETURN")
    code, text = fw.plan()
    assert code == 2
    assert "- rule nat DOCKYARD -p tcp -m tcp --dport 9 -j RETURN  (not in the spec)" in text
    fw.converge()
    assert fw.rules("nat", ours=True) == DOCKER_RULES["nat"]


def test_the_daemons_chains_are_never_flushed_emptied_or_reordered(fw: Firewall) -> None:
    fw.converge()
    daemon = [
        "-t nat -A DOCKER -i docker0 -j RETURN",
        "-t nat -A DOCKER ! -i docker0 -p tcp --dport 9 -j DNAT --to-destination 172.17.0.9:9",
        "-A DOCKER -d 172.17.0.9/32 ! -i docker0 -o docker0 -p tcp --dport 9 -j ACCEPT",
    ]
    for rule in daemon:
        fw.iptables(*rule.split())
    before = {t: [x for x in fw.save(t) if x.startswith("-A DOCKER ")] for t in ("nat", "filter")}
    assert fw.plan()[0] == 0  # the daemon's rules are not drift
    for network in ({}, {"iptables": False}):
        fw.spec(network)
        fw.converge()
        after = {t: [x for x in fw.save(t) if x.startswith("-A DOCKER ")] for t in before}
        assert after == before
    assert fw.box.reconcile("down", "SPEC").returncode == 0
    assert {t: [x for x in fw.save(t) if x.startswith("-A DOCKER ")] for t in before} == before


def test_iptables_false_removes_ours_and_keeps_foreign(fw: Firewall) -> None:
    fw.converge()
    add_foreign(fw)
    before = foreign_view(fw)
    fw.spec({"iptables": False})
    code, text = fw.plan()
    assert code == 2 and "network.iptables is false" in text
    fw.converge()
    assert fw.rules("nat", ours=True) == [] and fw.rules("filter", ours=True) == []
    assert foreign_view(fw) == before
    assert "DOCKYARD" not in fw.chains("nat") and "DOCKYARD" not in fw.chains("filter")
    assert "DOCKYARD-HAIRPIN" not in fw.chains("nat")
    assert "DOCKER" in fw.chains("nat")  # the daemon's: never removed
    assert "DOCKER-USER" in fw.chains("filter")  # it holds the user's rule
    assert fw.plan()[0] == 0


DRIFTS = {
    "rule deleted": [("-D", "FORWARD", "3")],
    "rule edited": [
        (
            "-R",
            "FORWARD",
            "5",
            "-i",
            "docker0",
            "-o",
            "docker0",
            "-m",
            "comment",
            "--comment",
            "KEEP",
            "-j",
            "DROP",
        )
    ],
    "rule duplicated": [("-A", "FORWARD", "-o", "docker0", "-j", "DOCKYARD")],
    "chain flushed": [("-t", "nat", "-F", "DOCKYARD")],
    "user jump moved below ours": [("-D", "FORWARD", "1"), ("-A", "FORWARD", "JUMP")],
}


@pytest.mark.parametrize("drift", list(DRIFTS), ids=list(DRIFTS))
def test_drift_is_detected_and_repaired(fw: Firewall, drift: str) -> None:
    fw.spec(
        {"published_ports": [{"host_port": 80, "container_ip": "172.17.0.2", "container_port": 80}]}
    )
    fw.converge()
    fw.iptables("-A", "DOCKER-USER", "-s", "192.0.2.66/32", "-j", "DROP")
    wanted = {t: fw.save(t) for t in ("nat", "filter")}
    if drift == "user jump moved below ours":
        jump = next(line for line in fw.save("filter") if line.endswith("-j DOCKER-USER"))
        fw.iptables("-D", "FORWARD", "1")
        fw.iptables(*shlex.split(jump))
    elif drift in ("rule edited", "rule duplicated"):
        # Hand-made copies of our rules keep our comment, as an admin's edit would.
        line = next(
            x for x in fw.save("filter") if "-o docker0 -m comment" in x and "-j DOCKYARD" in x
        )
        comment = line.split('--comment "')[1].split('"')[0]
        for step in DRIFTS[drift]:
            fw.iptables(
                *[comment if w == "KEEP" else w for w in step],
                *(["-m", "comment", "--comment", comment] if drift == "rule duplicated" else []),
            )
    else:
        for step in DRIFTS[drift]:
            fw.iptables(*step)
    assert {t: fw.save(t) for t in ("nat", "filter")} != wanted
    code, _ = fw.plan()
    assert code == 2
    fw.converge()
    assert {t: fw.save(t) for t in ("nat", "filter")} == wanted
    assert "-A DOCKER-USER -s 192.0.2.66/32 -j DROP" in fw.rules("filter")
    assert fw.plan()[0] == 0


def hold(lock: Path) -> int:
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_xtables_lock_held_briefly_is_waited_for(fw: Firewall) -> None:
    fw.spec({"iptables_lock_timeout": 20})
    lock = Path(fw.box.env["XTABLES_LOCKFILE"])
    fd = hold(lock)
    proc = start(fw)
    try:
        wait_for_commit(proc)
        time.sleep(0.3)
        assert proc.poll() is None  # still waiting for the lock
    finally:
        os.close(fd)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert fw.rules("filter", ours=True) == DOCKER_RULES["filter"]


def test_xtables_lock_held_too_long_is_a_clear_error(fw: Firewall) -> None:
    fw.spec({"iptables_lock_timeout": 0.5})
    fd = hold(Path(fw.box.env["XTABLES_LOCKFILE"]))
    try:
        result = fw.box.reconcile("SPEC")
    finally:
        os.close(fd)
    assert result.returncode == 1
    assert (
        f"the xtables lock {fw.box.env['XTABLES_LOCKFILE']} is held by another program; "
        "gave up after 0.5s (network.iptables_lock_timeout)" in result.stderr
    )
    assert fw.rules("filter") == [] and fw.rules("nat") == []
    # Only the firewall failed: the bridge it comes after converged and stays.
    assert "rolled back: + bridge docker0" not in result.stderr
    assert fw.box.run(["ip", "link", "show", "docker0"]).returncode == 0
    assert fw.box.reconcile("SPEC").returncode == 0  # the lock free again: it converges


def start(fw: Firewall) -> subprocess.Popen[str]:
    argv = fw.box.dockyard("SPEC")
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **fw.box.env},
    )


def wait_for_commit(proc: subprocess.Popen[str]) -> None:
    """Until the run has observed and planned, and reached the iptables commit."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("iptables:"):
            return
    raise AssertionError("reconcile ended before it reached the iptables commit")


def written_while_waiting(fw: Firewall, args: list[str]) -> subprocess.Popen[str]:
    """A converge started while the xtables lock is held; once it has read the tables and
    waits to commit, another program runs `iptables ARGS` (with a lock of its own), and the
    lock is let go. The caller waits for the converge."""
    lock = Path(fw.box.env["XTABLES_LOCKFILE"])
    fd = hold(lock)
    proc = start(fw)
    try:
        wait_for_commit(proc)
        other = {**fw.box.env, "XTABLES_LOCKFILE": str(lock) + ".other"}
        result = fw.box.run([f"iptables-{fw.backend}", *args], env=other)
        assert result.returncode == 0, result.stderr
    finally:
        os.close(fd)
    return proc


def test_a_concurrent_writer_between_read_and_commit(fw: Firewall) -> None:
    """Another program changes FORWARD after dockyard read it and before it commits: its rule
    survives, and dockyard's rules still end up at the top."""
    fw.spec({"iptables_lock_timeout": 30})
    proc = written_while_waiting(fw, ["-I", "FORWARD", "1", "-s", "10.7.7.7/32", "-j", "ACCEPT"])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert fw.rules("filter", ours=False) == ["-A FORWARD -s 10.7.7.7/32 -j ACCEPT"]
    assert fw.rules("filter", ours=True) == DOCKER_RULES["filter"]
    assert fw.plan()[0] == 0


def test_a_bulk_append_of_many_ports_converges(fw: Firewall) -> None:
    ports = mappings(80, host=2000, container=2000)
    fw.spec({"published_ports": ports})
    doc = json.loads(fw.box.reconcile("plan", "SPEC", "-o", "json").stdout)
    bulk = [
        c
        for c in doc["changes"]
        if c["resource"] in ("rules nat DOCKYARD", "rules filter DOCKYARD")
    ]
    assert [c["after"]["count"] for c in bulk] == [80, 80]
    fw.converge()
    assert len([r for r in fw.rules("nat", ours=True) if r.startswith("-A DOCKYARD ")]) == 80
    assert len([r for r in fw.rules("nat", ours=True) if r.startswith("-A DOCKYARD-HAIR")]) == 80
    assert fw.plan()[0] == 0


def test_many_changed_ports_rewrite_our_chains_in_one_pass(fw: Firewall) -> None:
    ports = mappings(80, host=2000, container=2000)
    fw.spec({"published_ports": ports})
    fw.converge()
    before = {t: fw.save(t) for t in ("nat", "filter")}
    fw.spec({"published_ports": mappings(80, host=2000, container=9000)})
    doc = json.loads(fw.box.reconcile("plan", "SPEC", "-o", "json").stdout)
    assert [(c["resource"], c["action"], c["reason"]) for c in doc["changes"]] == [
        ("rules nat DOCKYARD", "update", "80 missing, 80 not in the spec"),
        ("rules nat DOCKYARD-HAIRPIN", "update", "80 missing, 80 not in the spec"),
        ("rules filter DOCKYARD", "update", "80 missing, 80 not in the spec"),
    ]
    fw.converge()
    assert fw.plan()[0] == 0
    assert len([r for r in fw.rules("nat", ours=True) if "--to-destination" in r]) == 80
    fw.spec({"published_ports": ports})
    fw.converge()
    assert {t: fw.save(t) for t in ("nat", "filter")} == before
    fw.spec({"iptables": False})
    fw.converge()
    assert fw.rules("nat") == [] and fw.rules("filter") == []
    assert "DOCKYARD" not in fw.chains("nat") and "DOCKER" in fw.chains("nat")


READ_AHEAD = """
import os, subprocess, sys, time
from pathlib import Path
from dockyard.reconcilers.iptables import backends
from dockyard.state import tables_ahead

backend, stamp, case = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if case == "committed long before":
    stamp.touch()
    os.utime(stamp, (time.time() - 60, time.time() - 60))
if case == "committed just before":
    backends.touch(stamp)
if case == "committed just before, by another clock":
    stamp.write_text("another-boot/1 1\\n")  # its reading means nothing here: its time counts
with tables_ahead.reading_ahead():
    tables_ahead._ahead[backend].proc.wait()
    rule = ["FORWARD", "-s", "10.5.5.5/32", "-j", "ACCEPT"]
    subprocess.run([f"iptables-{backend}", "-w", "-A", *rule], check=True)
    if case == "committed since":
        backends.touch(stamp)
    print("fresh" if "10.5.5.5" in backends.save(backend, stamp) else "read ahead")
"""


@pytest.mark.parametrize(
    ("case", "used"),
    [
        ("never committed", "read ahead"),
        ("committed long before", "read ahead"),
        ("committed just before", "read ahead"),
        ("committed just before, by another clock", "fresh"),
        ("committed since", "fresh"),
    ],
)
def test_a_read_started_ahead_is_used_only_if_dockyard_committed_nothing_since(
    fw: Firewall, case: str, used: str
) -> None:
    stamp = fw.box.path("/var/lib/dockyard/iptables.written")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    result = fw.box.run([sys.executable, "-c", READ_AHEAD, fw.backend, str(stamp), case])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == used


def test_legacy_tables_read_side_by_side_are_one_save(box_factory: Any) -> None:
    """The verify pass and a watch read each legacy table with its own iptables-legacy-save,
    all at once: what they parse is what one save gives."""
    fw = Firewall(box_factory(), "legacy")
    fw.spec(
        {"published_ports": [{"host_port": 80, "container_ip": "172.17.0.2", "container_port": 80}]}
    )
    fw.converge()
    fw.iptables("-t", "mangle", "-A", "PREROUTING", "-j", "ACCEPT")
    code = (
        "import subprocess, sys\n"
        "from dockyard.reconcilers.iptables import backends, save\n"
        "from dockyard.state import netfilter\n"
        "assert len(netfilter.legacy_tables()) == 3, netfilter.legacy_tables()\n"
        "one = subprocess.run(['iptables-legacy-save'], capture_output=True, text=True).stdout\n"
        "assert save.parse(backends.save('legacy')) == save.parse(one)\n"
        "assert backends._side_by_side(netfilter.legacy_tables()) is not None\n"
        "print('same')\n"
    )
    here = str(Path(__file__).resolve().parents[2])  # this checkout's dockyard
    result = fw.box.run([sys.executable, "-c", code], env={"PYTHONPATH": here})
    assert result.stdout == "same\n", result.stderr


def _add_raw(fw: Firewall, *args: bytes) -> None:
    """`iptables ARGS` with arguments as bytes (Sandbox.run decodes text)."""
    argv = [b"ip", b"netns", b"exec", fw.box.ns.encode(), f"iptables-{fw.backend}".encode()]
    result = subprocess.run(
        [*argv, b"-w", *args],
        capture_output=True,
        env=fw.box.env | {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert result.returncode == 0, result.stderr


def _dockyard_nat(fw: Firewall) -> bytes:
    argv = ["ip", "netns", "exec", fw.box.ns, f"iptables-{fw.backend}-save", "-t", "nat"]
    out = subprocess.run(argv, capture_output=True, check=True).stdout
    return b"\n".join(line for line in out.split(b"\n") if line.startswith(b"-A DOCKYARD "))


@pytest.mark.parametrize(
    "comment",
    [b"hand\xffmade", b"hand\rmade", b"hand\x85made", "hand\u2028made".encode()],
    ids=["non-utf8", "cr", "nel", "u2028"],
)
def test_a_hand_rule_in_our_chain_is_removed_whatever_its_comment(
    fw: Firewall, comment: bytes
) -> None:
    """A rule put by hand into DOCKYARD is drift that apply removes, whatever bytes its comment
    holds: not UTF-8 (read as they are and written back so), or a line separator other than
    a newline (iptables-restore reads lines at newlines only). A reviewer's test; a comment
    with a newline in it has tests of its own below."""
    fw.spec(
        {
            "published_ports": [
                {"host_port": 8080, "container_ip": "172.17.0.2", "container_port": 80}
            ]
        }
    )
    fw.converge()
    clean = _dockyard_nat(fw)
    _add_raw(
        fw,
        b"-t",
        b"nat",
        b"-A",
        b"DOCKYARD",
        b"-p",
        b"tcp",
        b"--dport",
        b"9",
        b"-m",
        b"comment",
        b"--comment",
        comment,
        b"-j",
        b"RETURN",
    )
    assert _dockyard_nat(fw) != clean
    result = fw.box.reconcile("SPEC")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _dockyard_nat(fw) == clean
    assert fw.plan()[0] == 0


def _own_nat(fw: Firewall) -> list[str]:
    """The rules of nat's DOCKYARD chain as dockyard reads them, in any order."""
    argv = ["ip", "netns", "exec", fw.box.ns, f"iptables-{fw.backend}-save", "-t", "nat"]
    out = subprocess.run(argv, capture_output=True, check=True, text=True).stdout
    return sorted(save.parse(out)["nat"].rules["DOCKYARD"])


def test_a_hand_rule_whose_comment_forges_a_wanted_rule_is_removed(fw: Firewall) -> None:
    """A comment holding newlines is printed over several lines, and a line of it can be a
    wanted rule, word for word. Here that rule itself is gone: read line by line, the chain
    would look whole, and the hand rule's first line could not be named to delete it (every
    run failed). Read as one rule, the hand rule goes (the chain is flushed and written
    again), the wanted rule is back, the plan shows the newlines as `\\n`, and a second run
    changes nothing."""
    port = {"host_port": 8080, "container_ip": "172.17.0.2", "container_port": 80}
    fw.spec({"published_ports": [port]})
    fw.converge()
    clean = _own_nat(fw)
    wanted = next(line for line in clean if "--dport 8080" in line)
    fw.iptables("-t", "nat", "-D", "DOCKYARD", *wanted.split())
    forged = f"x\n-A DOCKYARD {wanted}\ny"
    hand = ["-p", "tcp", "--dport", "9", "-m", "comment", "--comment", forged, "-j", "RETURN"]
    fw.iptables("-t", "nat", "-A", "DOCKYARD", *hand)
    assert f"\n-A DOCKYARD {wanted}\n" in _dockyard_nat(fw).decode() + "\n"
    code, shown = fw.plan()
    assert code == 2
    assert f"\\n-A DOCKYARD {wanted}\\ny" in shown
    assert not any(line.startswith("-A ") for line in shown.splitlines())
    fw.converge()
    assert _own_nat(fw) == clean
    assert fw.plan()[0] == 0


def test_a_foreign_rule_over_three_lines_keeps_its_place_and_ours_theirs(fw: Firewall) -> None:
    """A foreign rule in FORWARD whose comment holds a line that reads as a jump to
    DOCKER-USER: taken for a rule, that line would be a barrier that dockyard's rules go
    below, one place further down than the chain has (the commit failed). Read as one rule,
    it is no barrier: dockyard's rules go on top, in their order, and it stays whole below."""
    comment = "a\n-A FORWARD -j DOCKER-USER\nb"
    fw.iptables("-N", "DOCKER-USER")
    fw.iptables("-A", "FORWARD", "-m", "comment", "--comment", comment, "-j", "ACCEPT")
    fw.converge()
    out = fw.box.run([f"iptables-{fw.backend}-save", "-t", "filter"], check=True).stdout
    foreign = f'\n-A FORWARD -m comment --comment "{comment}" -j ACCEPT\nCOMMIT\n'
    assert foreign in out
    assert fw.rules("filter", ours=True) == DOCKER_RULES["filter"]
    assert fw.plan()[0] == 0


UNREADABLE = (
    "iptables-nft-save cannot show the nf_tables table ip filter whole: it holds rules or "
    "chains written with `nft` that iptables cannot express, and dockyard does not write "
    "beside what it cannot read; remove them with `nft`, or set "
    "network.iptables_backend: legacy"
)


@pytest.mark.skipif("nft" not in BACKENDS, reason="needs iptables-nft")
def test_a_table_iptables_nft_cannot_show_is_refused_and_left_alone(box_factory: Any) -> None:
    """Rules written with `nft` that iptables cannot express make iptables-nft-save print a
    comment in the place of the whole table, as if it were empty. Planned on that, the run
    would make the chains again beside rules it cannot read: it stops instead, changing
    nothing of the firewall, and says how to go on."""
    fw = Firewall(box_factory(), "nft")
    fw.spec({"published_ports": mappings(3, host=8000, container=1000)})
    forward = "{ type filter hook forward priority 0; }"
    for command in (
        ["nft", "add", "table", "ip", "filter"],
        ["nft", "add", "chain", "ip", "filter", "FORWARD", forward],
        ["nft", "add", "rule", "ip", "filter", "FORWARD", "log", "prefix", "by-hand"],
    ):
        fw.box.run(command, check=True)
    before = fw.box.run(["nft", "list", "ruleset"], check=True).stdout
    result = fw.box.reconcile("SPEC")
    assert result.returncode == 1
    assert UNREADABLE in result.stderr
    assert "Traceback" not in result.stderr
    assert fw.box.run(["nft", "list", "ruleset"], check=True).stdout == before
    fw.box.run(["nft", "flush", "chain", "ip", "filter", "FORWARD"], check=True)
    fw.converge()  # once the table can be read, the run goes on
    assert fw.plan()[0] == 0


@pytest.mark.skipif("nft" not in BACKENDS, reason="needs iptables-nft")
@pytest.mark.parametrize("chain", ["DOCKYARD", "DOCKER-USER"])
def test_a_base_chain_iptables_nft_save_leaves_out_is_refused(box_factory: Any, chain: str) -> None:
    """A base chain made with `nft` under a name dockyard makes: iptables-nft-save says the
    table "contains incompatible base-chains" and shows it without them. Planned on that, the
    commit would fail on a chain that exists; the firewall is refused before any change."""
    fw = Firewall(box_factory(), "nft")
    fw.spec({"published_ports": mappings(1, host=8080, container=80)})
    hook = "{ type filter hook forward priority 5; policy drop; }"
    fw.box.run(["nft", "add", "table", "ip", "filter"], check=True)
    fw.box.run(["nft", "add", "chain", "ip", "filter", chain, hook], check=True)
    before = fw.box.run(["nft", "list", "ruleset"], check=True).stdout
    result = fw.box.reconcile("SPEC")
    assert result.returncode == 1
    assert UNREADABLE in result.stderr
    assert fw.box.run(["nft", "list", "ruleset"], check=True).stdout == before


@pytest.mark.skipif("nft" not in BACKENDS, reason="needs iptables-nft")
def test_down_with_networking_off_says_what_it_cannot_read(box_factory: Any) -> None:
    """Networking turned off after a converge, and the filter table made unreadable: `down`
    cannot know what of dockyard's is in it, so it does not say that nothing is left. A run
    that converges with networking off, which has nothing to remove, is not stopped."""
    fw = Firewall(box_factory(), "nft")
    fw.spec({"published_ports": mappings(1, host=8080, container=80)})
    fw.converge()
    fw.box.run(["nft", "add", "rule", "ip", "filter", "FORWARD", "log", "prefix", "x"], check=True)
    fw.spec({"bridge": {"name": "none"}})
    down = fw.box.reconcile("down", "SPEC")
    assert down.returncode == 1, down.stdout
    assert UNREADABLE in down.stderr
    assert "Nothing of dockyard's is left" not in down.stdout
    assert "Nothing to remove of what dockyard could read; the errors above say the rest." in (
        down.stdout
    )
    assert fw.box.reconcile("SPEC").returncode == 0
