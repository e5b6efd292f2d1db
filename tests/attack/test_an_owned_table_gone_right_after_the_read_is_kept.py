"""backends._keep asks whether a table is owned (`_owned`) only after the read has ended. A table
made with `flags owner` before the read is in the read; if its owner closes its socket between
the kernel's dump and that question (here: as iptables-nft-save exits, through a wrapper on
PATH that stands for that timing), the kernel removes the table without a commit, `_owned` finds
none, the generation has not moved, and the read, which shows a table that is gone, is kept.

The owner's table is an `ip filter` iptables-nft cannot show (`# Table `filter' is
incompatible`): every later run takes the kept read and is refused ("cannot show ... filter"),
while a real read finds no filter table and plans dockyard's filter rules. No run converges
until another program commits in the namespace. Asking before the read (a table owned then
would have been made by a commit, moving the generation) would close the window.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from dockyard.state import tables_kept
from tests.attack.kept_reads import owned_filter
from tests.integration.test_iptables import BACKENDS, Firewall, mappings

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif("nft" not in BACKENDS, reason="needs iptables-nft"),
]

WRAPPER = """#!/bin/sh
out=$(mktemp)
{real} "$@" > "$out"
rc=$?
if [ -f {flag} ]; then
    rm -f {flag}
    kill $(cat {pid})
    i=0
    while nft list table ip filter > /dev/null 2>&1 && [ $i -lt 100 ]; do
        sleep 0.05; i=$((i + 1))
    done
fi
cat "$out"
rm -f "$out"
exit $rc
"""


def test_a_read_of_an_owned_table_whose_owner_exits_as_it_ends_is_not_kept(
    box_factory: Any,
) -> None:
    fw = Firewall(box_factory(), "nft")
    fw.spec({"published_ports": mappings(8000, host=10000, container=10000)})  # nat > 1 MiB
    fw.converge()
    base = fw.box.base
    flag, pid = base / "kill-owner", base / "owner.pid"
    bin_dir = base / "wrapped-bin"
    bin_dir.mkdir()
    save = bin_dir / "iptables-nft-save"
    save.write_text(WRAPPER.format(real=shutil.which("iptables-nft-save"), flag=flag, pid=pid))
    save.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}

    owner = owned_filter(fw)
    pid.write_text(f"{owner.pid}\n")
    flag.write_text("")
    kept = fw.box.path("var/cache/dockyard") / tables_kept.NAME
    kept.unlink(missing_ok=True)

    first = fw.box.reconcile("plan", "SPEC", "--detailed-exitcode", env=env)
    assert (
        first.returncode == 1 and "filter" in first.stdout + first.stderr
    )  # refused: it was there
    owner.wait(timeout=10)
    assert not flag.exists()
    assert "incompatible" not in fw.box.run(["iptables-nft-save"]).stdout  # the table is gone

    real = fw.box.reconcile(
        "plan", "SPEC", "--detailed-exitcode", env={**env, "DOCKYARD_CACHE_DIR": ""}
    )
    assert real.returncode == 2, real.stdout + real.stderr  # a real read: filter to write
    again = fw.box.reconcile("plan", "SPEC", "--detailed-exitcode", env=env)
    assert (again.returncode, again.stdout) == (real.returncode, real.stdout), (
        again.stdout + again.stderr
    )
