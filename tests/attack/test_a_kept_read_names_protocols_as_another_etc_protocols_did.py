"""iptables-nft-save prints a protocol by its name in /etc/protocols (`-p 47` prints `-p gre`):
what it prints depends on a file the kept read's key (state/tables_kept.py: boot, network
namespace, generation, iptables-nft-save, libxtables, extensions) does not cover. A run that
sees another /etc/protocols (netbase upgraded, another mount namespace, nsswitch) at the same
generation takes the kept text, and plans on names a real read no longer prints.

Here a foreign rule `-p 47 -j ACCEPT` is in nat DOCKYARD (one published port; a foreign chain
makes the save larger than tables_kept.FROM). A plan is kept where /etc/protocols names 47
`gre`. Then, where it does not (a private mount namespace), a real read (cache off) plans
`- rule nat DOCKYARD -p 47 -j ACCEPT`; the kept read plans `-p gre`, and the run's commit
(`-D DOCKYARD -p gre -j ACCEPT`) fails with "unknown protocol" at every run, until some other
program commits in the namespace. The README promises the plan a real read gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockyard.state import tables_kept
from tests.attack.kept_reads import padded, run_seeing
from tests.integration.test_iptables import BACKENDS, Firewall

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif("nft" not in BACKENDS, reason="needs iptables-nft"),
]


def run_without_gre(fw: Firewall, tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    protocols = tmp_path / "protocols"
    protocols.write_text(
        "".join(
            line
            for line in Path("/etc/protocols").read_text().splitlines(keepends=True)
            if not line.startswith("gre")
        )
    )
    return run_seeing(fw, "/etc/protocols", protocols, *args, **env)


def test_a_plan_from_the_kept_read_is_not_the_plan_a_read_gives(
    box_factory: Any, tmp_path: Path
) -> None:
    fw = Firewall(box_factory(), "nft")
    padded(fw, tmp_path, "-p", "47", "-j", "ACCEPT")

    kept = fw.box.path("var/cache/dockyard") / tables_kept.NAME
    code, out = fw.plan()  # read where 47 is gre, and kept
    assert code == 2 and "- rule nat DOCKYARD -p gre -j ACCEPT" in out, out
    assert kept.is_file()

    real = run_without_gre(
        fw, tmp_path, "plan", "SPEC", "--detailed-exitcode", DOCKYARD_CACHE_DIR=""
    )
    assert real[0] == 2 and "- rule nat DOCKYARD -p 47 -j ACCEPT" in real[1], real[1]
    taken = run_without_gre(fw, tmp_path, "plan", "SPEC", "--detailed-exitcode")
    assert taken == real


def test_a_run_on_the_kept_read_fails_where_a_read_would_converge(
    box_factory: Any, tmp_path: Path
) -> None:
    fw = Firewall(box_factory(), "nft")
    padded(fw, tmp_path, "-p", "47", "-j", "ACCEPT")
    assert fw.plan()[0] == 2  # read and kept where 47 is gre
    for _ in range(2):
        code, out = run_without_gre(fw, tmp_path, "SPEC")
        assert code == 0, out
