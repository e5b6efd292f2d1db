"""The kept read of nf_tables (state/tables_kept.py) rests on "any commit moves the ruleset
generation, so the same generation is the same ruleset". It is not: a table made with the
`owner` flag (NFT_TABLE_F_OWNER) is removed by the kernel when the netlink socket that made it
closes (`nft_rcv_nl_event`), with no commit and without moving the generation.

Here an owner of an `ip filter` table that iptables-nft cannot show (`# Table `filter' is
incompatible`) exits. A real read now shows no filter table: the plan is to write dockyard's
filter rules. The kept read, taken while that table was there, still stands for this
generation: every run is refused ("cannot show ... filter") and no run converges until some
other program commits in the namespace. The plan from the kept read is not the plan a real
read gives, which the README promises.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.attack.kept_reads import owned_filter
from tests.integration.test_iptables import BACKENDS, Firewall, mappings

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif("nft" not in BACKENDS, reason="needs iptables-nft"),
]


def generation(fw: Firewall) -> int:
    code = "from dockyard.state import netfilter; print(netfilter.nft_generation())"
    return int(fw.box.run([sys.executable, "-c", code], check=True).stdout)


def test_a_table_gone_with_its_owner_is_still_read_from_the_kept_file(box_factory: Any) -> None:
    fw = Firewall(box_factory(), "nft")
    fw.spec({"published_ports": mappings(8000, host=10000, container=10000)})  # nat > 1 MiB
    fw.converge()
    owner = owned_filter(fw)
    code, out = fw.plan()
    assert code == 1 and "filter" in out, out  # refused: the owner's table (a real read)
    owner.stdin.close()
    owner.wait(timeout=10)
    at = generation(fw)
    assert "incompatible" not in fw.box.run(["iptables-nft-save"]).stdout  # the table is gone
    assert generation(fw) == at  # ...without a commit
    real = fw.box.reconcile("plan", "SPEC", "--detailed-exitcode", env={"DOCKYARD_CACHE_DIR": ""})
    assert real.returncode == 2, real.stdout + real.stderr  # a real read: filter to write
    code, out = fw.plan()
    assert (code, out) == (real.returncode, real.stdout), out
