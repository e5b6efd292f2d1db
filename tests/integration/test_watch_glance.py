"""A watch that glances at the firewall before reading it, against the real kernel: nf_tables'
events lead to a read of the chains they name, legacy tables are read when their size
changes and in full every --full-every passes. The tests count passes and reads (the
watch's metrics), never time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.sandbox import Sandbox
from tests.integration.watching import Watcher, corrective

pytestmark = pytest.mark.root

NEVER = "86400"  # seconds: an interval that never comes within a test
PORTS = [
    {"host_port": 8080 + n, "container_ip": f"172.17.0.{n + 2}", "container_port": 80}
    for n in range(3)
]


def on(box: Sandbox, backend: str) -> None:
    box.write_spec(
        {"version": 1, "network": {"iptables_backend": backend, "published_ports": PORTS}}
    )


def iptables(box: Sandbox, backend: str, *args: str) -> None:
    box.run([f"iptables-{backend}", "-w", *args], check=True)


def rule_in(box: Sandbox, backend: str, table: str, chain: str, index: int = 0) -> str:
    """The index-th rule of a chain, as the watch names the change that restores it."""
    out = box.run([f"iptables-{backend}", "-t", table, "-S", chain], check=True).stdout
    lines = [line for line in out.splitlines() if line.startswith(f"-A {chain} ")]
    return f"rule {table} {chain} " + lines[index].removeprefix(f"-A {chain} ")


def converged(box: Sandbox) -> bool:
    return box.reconcile("plan", "SPEC", "--detailed-exitcode").returncode == 0


def started(watcher: Callable[..., Watcher], *extra: str) -> Watcher:
    """A watch past its first two passes: the one that converged (and read in full), and the
    one after it, which reads in full again to find the tables clean (woken by its own
    commits on nft, by the interval on legacy). Every pass after that only glances."""
    w: Watcher = watcher(*extra, count_passes=True)
    w.ready()
    while w.passes() < 2:
        w.wait_passes(1)
    assert w.reads("full") == 2
    return w


def test_on_nft_a_deleted_owned_rule_is_repaired_through_the_events(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    on(box, "nft")
    w = started(watcher, "--interval", NEVER)
    name = rule_in(box, "nft", "nat", "POSTROUTING")
    iptables(box, "nft", "-t", "nat", "-D", "POSTROUTING", "1")
    w.wait_for(corrective(name), f"corrective change of {name}")
    w.wait_passes(1)
    # No interval came: the events woke the watch, which read only the chain they named.
    assert w.reads("full") == 2
    assert w.reads("partial") >= 1
    assert converged(box)


@pytest.mark.parametrize(
    ("what", "drift", "repaired"),
    [
        (
            "a published port's DNAT rule",
            lambda b: iptables(b, "nft", "-t", "nat", "-D", "DOCKYARD", "2"),
            lambda b: rule_in(b, "nft", "nat", "DOCKYARD", 1),
        ),
        (
            "the user's chain and the jump to it",
            lambda b: (
                iptables(b, "nft", "-D", "FORWARD", "1"),
                iptables(b, "nft", "-X", "DOCKER-USER"),
            ),
            lambda b: "chain filter DOCKER-USER",
        ),
    ],
    ids=["own chain", "chain deleted"],
)
def test_on_nft_what_the_events_name_is_read_and_repaired(
    box: Sandbox,
    watcher: Callable[..., Watcher],
    what: str,
    drift: Callable[[Sandbox], Any],
    repaired: Callable[[Sandbox], str],
) -> None:
    on(box, "nft")
    w = started(watcher, "--interval", NEVER)
    name = repaired(box)
    drift(box)
    w.wait_for(corrective(name), f"{what} restored")
    w.wait_passes(1)
    assert w.reads("full") == 2
    assert converged(box)


def test_on_nft_commits_to_other_tables_are_not_read(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    on(box, "nft")
    w = started(watcher, "--interval", NEVER)
    box.run(["ip6tables-nft", "-w", "-A", "INPUT", "-j", "ACCEPT"], check=True)
    iptables(box, "nft", "-t", "mangle", "-A", "PREROUTING", "-j", "ACCEPT")
    while w.reads("none") < 1:  # woken by the commits; bounded by wait_passes
        w.wait_passes(1)
    assert w.reads("full") == 2
    assert w.reads("partial") == 0


def test_on_legacy_a_deleted_owned_rule_is_repaired_at_the_next_pass(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    """Legacy xtables has no events: the interval finds it, and the table's entry count says
    it changed, however far the next full comparison is."""
    on(box, "legacy")
    w = started(watcher, "--full-every", "100000")
    w.wait_passes(2)
    assert w.reads("full") == 2 and w.reads("none") >= 1  # the passes since only glanced
    name = rule_in(box, "legacy", "nat", "POSTROUTING")
    iptables(box, "legacy", "-t", "nat", "-D", "POSTROUTING", "1")
    before = w.passes()
    change = w.wait_for(corrective(name), f"corrective change of {name}")
    w.wait_for(repaired, "the pass that repaired it", since=w.seen.index(change))
    # Counted: the pass under way when the rule was deleted (it may have looked before), and
    # the next, which repaired it.
    assert w.passes() - before <= 2
    assert converged(box)


def repaired(event: dict[str, Any]) -> bool:
    return event["event"] == "pass" and event["kind"] == "corrective"


def edit_in_place(box: Sandbox) -> str:
    """MASQUERADE's source changed to another of the same length: the table keeps its size
    and entry count. Returns the name of the change that restores it."""
    name = rule_in(box, "legacy", "nat", "POSTROUTING")
    rule = name.removeprefix("rule nat POSTROUTING ")
    assert rule.startswith("-s 172.17.0.0/16 ")
    edited = rule.replace("172.17.0.0/16", "172.18.0.0/16", 1).split()
    edited = [word.strip('"') for word in edited]  # the comment, quoted by -S
    iptables(box, "legacy", "-t", "nat", "-R", "POSTROUTING", "1", *edited)
    assert "172.18.0.0/16" in rule_in(box, "legacy", "nat", "POSTROUTING")
    return name


def test_on_legacy_an_edit_in_place_is_repaired_by_the_full_comparison(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    on(box, "legacy")
    w = started(watcher, "--full-every", "3")
    name = edit_in_place(box)
    before = w.passes()
    w.wait_for(corrective(name.replace("-s 172.17.", "-s 172.18.")), "the edited rule removed")
    change = w.wait_for(corrective(name), f"corrective change of {name}")
    w.wait_for(repaired, "the pass that repaired it", since=w.seen.index(change))
    assert w.passes() - before <= 4  # the one under way, and at most 3 more
    assert converged(box)


def test_on_legacy_an_edit_in_place_waits_for_the_full_comparison(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    """The documented limit: until the next full comparison, the glance cannot see it."""
    on(box, "legacy")
    w = started(watcher, "--full-every", "100000")
    edit_in_place(box)
    w.wait_passes(4)
    assert "172.18.0.0/16" in rule_in(box, "legacy", "nat", "POSTROUTING")
    assert w.reads("full") == 2
    assert not converged(box)


def test_on_nft_after_lost_announcements_one_full_read_and_then_the_events_again(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    """50,000 IPv6 rules written at once overflow the watch's socket (ENOBUFS): what those
    commits did is unknown, so the next pass reads the IPv4 tables in full; a deletion after
    that is read from the events again. The watch is stopped (SIGSTOP) while they are
    written, so that its socket does overflow: a listener that kept up lost nothing, and then
    this test waited for a full read that never came."""
    on(box, "nft")
    w = started(watcher, "--interval", NEVER)
    script = box.base / "flood.rules"
    lines = [f"-A FLOOD -s 2001:db8::{n:x}/128 -j ACCEPT" for n in range(50000)]
    script.write_text("*filter\n:FLOOD - [0:0]\n" + "\n".join(lines) + "\nCOMMIT\n")
    os.kill(w.proc.pid, signal.SIGSTOP)
    try:
        with script.open("rb") as feed:
            subprocess.run(
                ["ip", "netns", "exec", box.ns, "ip6tables-nft-restore", "--noflush"],
                stdin=feed,
                check=True,
            )
    finally:
        os.kill(w.proc.pid, signal.SIGCONT)
    while w.reads("full") < 3:  # woken by the loss, it cannot tell what changed
        w.wait_passes(1)
    name = rule_in(box, "nft", "nat", "POSTROUTING")
    iptables(box, "nft", "-t", "nat", "-D", "POSTROUTING", "1")
    change = w.wait_for(corrective(name), f"corrective change of {name}")
    w.wait_for(repaired, "the pass that repaired it", since=w.seen.index(change))
    assert w.reads("full") == 3
    assert converged(box)


def test_a_glance_at_legacy_tables_creates_none(box: Sandbox) -> None:
    """Asking the kernel for a table it does not have would create it: the glance asks only
    for those /proc/net/ip_tables_names lists."""
    here = str(Path(__file__).resolve().parents[2])
    code = (
        "from pathlib import Path\n"
        "from dockyard.reconcilers.iptables import Iptables\n"
        "from dockyard.spec import load_text\n"
        "names = Path('/proc/net/ip_tables_names')\n"
        "before = names.read_text() if names.exists() else ''\n"
        "spec = load_text('version: 1\\nnetwork: {iptables_backend: legacy}\\n')\n"
        "token = Iptables()._token(spec)\n"
        "after = names.read_text() if names.exists() else ''\n"
        "print(repr(before), repr(after), token.legacy)\n"
    )
    result = box.run([sys.executable, "-c", code], env={"PYTHONPATH": here})
    assert result.returncode == 0, result.stderr
    assert result.stdout in ("'' '' ()\n", "'' '' None\n")
    iptables(box, "legacy", "-t", "filter", "-A", "INPUT", "-j", "ACCEPT")
    result = box.run([sys.executable, "-c", code], env={"PYTHONPATH": here})
    before, after, token = result.stdout.split(" ", 2)
    assert before == after == "'filter\\n'"
    assert token.startswith("(('filter', TableInfo(")
