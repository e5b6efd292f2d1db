"""iptables-nft-save prints a device group by its name in /etc/iproute2/group (libxt_devgroup:
`--src-group 5` prints `--src-group blue` when that file names 5 `blue`), and a realm by its
name in /etc/iproute2/rt_realms (libipt_realm). The kept read's key (state/tables_kept.py)
covers /etc/protocols, nsswitch.conf and connlabel.conf, not these: a run that sees another
group file (iproute2 upgraded or configured, another mount namespace, /etc/netns/NAME/ that
`ip netns exec` binds over /etc) at the same generation takes the kept text and plans on names
a real read no longer prints.

Here a foreign rule `-m devgroup --src-group 5 -j ACCEPT` is in nat DOCKYARD (padding makes the
save larger than tables_kept.FROM). A plan is kept where the group file names 5 `blue` (a
private mount namespace); then, with the host's file (5 unnamed), a real read (cache off)
plans `- rule nat DOCKYARD -m devgroup --src-group 0x5 -j ACCEPT`, the kept read plans
`--src-group blue`, and the run's commit (`-D DOCKYARD -m devgroup --src-group blue ...`)
fails at every run until some other program commits in the namespace.
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
    pytest.mark.skipif(not Path("/etc/iproute2/group").is_file(), reason="no group file"),
]


def run_with_blue(fw: Firewall, tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    group = tmp_path / "group"
    group.write_text("5\tblue\n" + Path("/etc/iproute2/group").read_text())
    return run_seeing(fw, "/etc/iproute2/group", group, *args, **env)


def setup(fw: Firewall, tmp_path: Path) -> None:
    padded(fw, tmp_path, "-m", "devgroup", "--src-group", "5", "-j", "ACCEPT")


def test_a_plan_from_the_kept_read_is_not_the_plan_a_read_gives(
    box_factory: Any, tmp_path: Path
) -> None:
    fw = Firewall(box_factory(), "nft")
    setup(fw, tmp_path)
    kept = fw.box.path("var/cache/dockyard") / tables_kept.NAME
    code, out = run_with_blue(fw, tmp_path, "plan", "SPEC", "--detailed-exitcode")
    assert code == 2 and "--src-group blue" in out, out  # read where 5 is blue, and kept
    assert kept.is_file()

    real = fw.box.reconcile("plan", "SPEC", "--detailed-exitcode", env={"DOCKYARD_CACHE_DIR": ""})
    assert real.returncode == 2 and "--src-group 0x5" in real.stdout, real.stdout + real.stderr
    taken = fw.box.reconcile("plan", "SPEC", "--detailed-exitcode")
    assert (taken.returncode, taken.stdout) == (real.returncode, real.stdout)


def test_a_run_on_the_kept_read_fails_where_a_read_would_converge(
    box_factory: Any, tmp_path: Path
) -> None:
    fw = Firewall(box_factory(), "nft")
    setup(fw, tmp_path)
    code, out = run_with_blue(fw, tmp_path, "plan", "SPEC", "--detailed-exitcode")
    assert code == 2, out  # read and kept where 5 is blue
    for _ in range(2):
        result = fw.box.reconcile("SPEC")
        assert result.returncode == 0, result.stdout + result.stderr
