"""`down` (and a spec that no longer needs it) leaves `net.bridge.bridge-nf-call-iptables` at
the 1 that dockyard itself set, while it takes back the `route_localnet` it set.

dockyard sets bridge-nf-call-iptables (a setting of the whole network namespace) to 1 for
`icc: false`; the README explains why it otherwise leaves it alone: "once set, every bridge of
the namespace (a VM's too) goes through iptables". After `down` has removed every rule of
dockyard's, the namespace is still left filtering every bridge's frames through FORWARD (a VM
bridge behind a FORWARD policy of DROP stops passing traffic), and nothing records that
dockyard was the one that set it (no ledger fact, no teardown in bridge_netfilter.py), unlike
hairpin.py, which records route_localnet and sets it back on `down` and when the spec stops
asking for it. The same run with `icc: true` afterwards leaves it at 1 too.

Evidence: the sysctl at 0 beforehand, `reconcile` with icc: false sets 1, `reconcile down`
reports success ("Down complete") and the sysctl is still 1.
"""

from __future__ import annotations

import pytest

from devtools.sandbox import Sandbox

pytestmark = pytest.mark.root

BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"


def test_down_sets_back_the_bridge_nf_call_iptables_dockyard_set(box: Sandbox) -> None:
    box.set_sysctl(BRIDGE_NF, "0")
    box.write_spec({"version": 1, "network": {"icc": False}})
    result = box.reconcile("SPEC")
    assert result.returncode == 0, result.stdout + result.stderr
    assert box.sysctl(BRIDGE_NF) == "1"
    down = box.reconcile("down", "SPEC")
    assert down.returncode == 0, down.stdout + down.stderr
    assert box.sysctl(BRIDGE_NF) == "0", down.stdout


def test_a_spec_that_no_longer_needs_it_sets_it_back(box: Sandbox) -> None:
    box.set_sysctl(BRIDGE_NF, "0")
    box.write_spec({"version": 1, "network": {"icc": False}})
    assert box.reconcile("SPEC").returncode == 0
    box.write_spec({"version": 1, "network": {"icc": True}})
    result = box.reconcile("SPEC")
    assert result.returncode == 0, result.stdout + result.stderr
    assert box.sysctl(BRIDGE_NF) == "0", result.stdout


def test_down_dry_run_shows_the_put_back_and_a_1_found_stays(box: Sandbox) -> None:
    box.set_sysctl(BRIDGE_NF, "0")
    box.write_spec({"version": 1, "network": {"icc": False}})
    assert box.reconcile("SPEC").returncode == 0
    preview = box.reconcile("down", "--dry-run", "SPEC")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert f"~ sysctl {BRIDGE_NF}" in preview.stdout, preview.stdout
    assert box.sysctl(BRIDGE_NF) == "1"  # a dry run changes nothing
    assert box.reconcile("down", "SPEC").returncode == 0
    assert box.sysctl(BRIDGE_NF) == "0"
    # A 1 that dockyard did not set is not dockyard's: down leaves it.
    box.set_sysctl(BRIDGE_NF, "1")
    assert box.reconcile("SPEC").returncode == 0
    down = box.reconcile("down", "SPEC")
    assert down.returncode == 0, down.stdout + down.stderr
    assert box.sysctl(BRIDGE_NF) == "1", down.stdout
