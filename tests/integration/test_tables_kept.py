"""On nf_tables a whole read of the tables is kept across runs (state/tables_kept.py): a run
at the same ruleset generation, in the same namespace, takes it instead of reading, and plans
the same; any commit by anyone, and any other namespace, reads again."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import pytest

from devtools.sandbox import Sandbox
from dockyard.reconcilers.iptables import save
from dockyard.state import tables_kept
from tests.integration.test_iptables import BACKENDS, Firewall, mappings
from tests.integration.test_iptables_verify import Wrapped
from tests.integration.watching import Watcher

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif("nft" not in BACKENDS, reason="needs iptables-nft"),
]

PORTS = 4000  # a save of more than tables_kept.FROM bytes (about 1.1 MB)


@pytest.fixture
def wrapped(box_factory: Any) -> Wrapped:
    fw = Firewall(box_factory(), "nft")
    fw.spec({"published_ports": mappings(PORTS, host=10000, container=10000)})
    fw.converge()
    return Wrapped(fw)


def plan(wrapped: Wrapped, box: Sandbox | None = None, **env: str) -> tuple[int, str, int]:
    """`plan --detailed-exitcode` through the logged save: exit code, output, saves run."""
    wrapped.log.write_text("")
    env = {"PATH": f"{wrapped.bin}:{os.environ['PATH']}", **env}
    result = (box or wrapped.fw.box).reconcile("plan", "SPEC", "--detailed-exitcode", env=env)
    return (
        result.returncode,
        result.stdout + result.stderr,
        len(wrapped.log.read_text().splitlines()),
    )


def test_a_run_at_the_same_generation_reads_nothing_and_plans_the_same(wrapped: Wrapped) -> None:
    fw = wrapped.fw
    kept = fw.box.path("var/cache/dockyard") / tables_kept.NAME
    kept.unlink()  # kept by the converge (below): here, a read is kept
    code, out, saves = plan(wrapped)
    assert (code, saves) == (0, 1), out
    assert kept.is_file()
    code, out, saves = plan(wrapped)
    assert (code, saves) == (0, 0), out
    assert "No changes. The host matches the spec." in out
    # A rule deleted by another program moves the generation: read again, and planned.
    rule = next(r for r in fw.save("nat") if r.startswith("-A DOCKYARD ") and "--dport 10007 " in r)
    fw.iptables("-t", "nat", "-D", *shlex.split(rule)[1:])
    code, out, saves = plan(wrapped)
    assert (code, saves) == (2, 1), out
    assert "--dport 10007 " in out and "(missing)" in out
    code, out, saves = plan(wrapped)
    assert (code, saves) == (2, 0), out  # the same plan, from the read kept just before
    assert "--dport 10007 " in out
    fw.converge()
    assert plan(wrapped)[0] == 0


def test_what_a_converge_committed_is_kept(wrapped: Wrapped) -> None:
    """The commit's tables as the verify pass was told them (the generation shows that commit
    alone), the other tables as read before it: the next run reads nothing, and what it took
    is what a read gives."""
    fw = wrapped.fw
    ports = mappings(PORTS, host=10000, container=10000)
    ports[5] = {**ports[5], "container_port": 99}
    fw.spec({"published_ports": ports})
    code, out, saves = wrapped.reconcile()
    assert (code, saves) == (0, 1), out
    code, out, saves = plan(wrapped)
    assert (code, saves) == (0, 0), out
    kept = fw.box.path("var/cache/dockyard") / tables_kept.NAME
    told = save.parse(kept.read_bytes().split(b"\n", 2)[2].split(b"\n", 1)[1].decode())
    read = save.parse(fw.box.run(["iptables-nft-save"], check=True).stdout)
    for table in ("nat", "filter"):
        assert {c: list(r) for c, r in told[table].rules.items()} == {
            c: list(r) for c, r in read[table].rules.items()
        }


def generation(box: Sandbox) -> int:
    code = "from dockyard.state import netfilter; print(netfilter.nft_generation())"
    return int(box.run([sys.executable, "-c", code], check=True).stdout)


def test_another_namespace_does_not_take_it(wrapped: Wrapped, box_factory: Any) -> None:
    """The same cache directory, another network namespace at the same generation (commits
    made until it is): its own tables are read."""
    assert plan(wrapped)[0] == 0
    kept_at = generation(wrapped.fw.box)
    other = box_factory()
    other.write_spec(wrapped.fw.box.spec)
    other.run(["nft", "add", "table", "ip", "bump"], check=True)
    while generation(other) < kept_at:
        other.run(["nft", "add", "chain", "ip", "bump", f"c{generation(other)}"], check=True)
    assert generation(other) == kept_at
    cache = str(wrapped.fw.box.path("var/cache/dockyard"))
    code, out, saves = plan(wrapped, other, DOCKYARD_CACHE_DIR=cache)
    assert (code, saves) == (2, 1), out
    assert "No changes" not in out


def test_a_watch_keeps_nothing(wrapped: Wrapped) -> None:
    """A watch has its own shortcut and runs for good: it reads (here from nothing kept) and
    keeps no file, whose making would hold about 100 MB in the process at 100,000 ports."""
    kept = wrapped.fw.box.path("var/cache/dockyard") / tables_kept.NAME
    kept.unlink()
    watcher = Watcher(wrapped.fw.box, count_passes=True)
    try:
        watcher.wait_passes(2)
    finally:
        assert watcher.stop() == 0
    assert not kept.exists()
    code, out, saves = plan(wrapped)  # a run after it reads, and keeps
    assert (code, saves) == (0, 1), out
    assert kept.is_file()
