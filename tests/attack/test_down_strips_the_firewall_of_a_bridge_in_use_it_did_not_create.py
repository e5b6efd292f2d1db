"""`down` never strands containers: it refuses to delete a bridge with attached ports or while a
live daemon holds the pid file, and the firewall, which comes after the bridge, stays with it.
But a bridge dockyard did not create (adopted, `existing: true`, or found made by someone else)
is never deleted, so the refusal was never reached: `down` went on to remove dockyard's
MASQUERADE, its published ports and the FORWARD ACCEPTs of that bridge while containers were
attached to it (dockerd --iptables=false relies on exactly those rules), and exited 0. The
containers lost egress and published ports, as when docker0 was deleted under them."""

from __future__ import annotations

import pytest

from devtools.sandbox import Sandbox

pytestmark = pytest.mark.root


def test_down_keeps_the_firewall_of_a_bridge_in_use_unless_forced(box: Sandbox) -> None:
    box.run(["ip", "link", "add", "docker0", "type", "bridge"], check=True)
    applied = box.reconcile("SPEC")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    box.run(
        ["ip", "link", "add", "veth-a1", "type", "veth", "peer", "name", "veth-a1p"], check=True
    )
    box.run(["ip", "link", "set", "veth-a1", "master", "docker0"], check=True)

    refused = box.reconcile("down", "SPEC")
    assert refused.returncode == 1, refused.stdout
    assert (
        "docker0 stays: dockyard did not create it; 1 port(s) attached (veth-a1), containers "
        "use it: its firewall stays too; stop them first, or reconcile down --force"
    ) in refused.stderr, refused.stderr
    assert "dockyard:" in box.run(["iptables-save"]).stdout

    forced = box.reconcile("down", "SPEC", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "dockyard:" not in box.run(["iptables-save"]).stdout
    assert box.run(["ip", "link", "show", "docker0"]).returncode == 0  # never dockyard's
