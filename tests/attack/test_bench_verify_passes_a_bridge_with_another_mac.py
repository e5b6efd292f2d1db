"""The peer bench verifies that each tool leaves the host dockyard leaves (bench/hoststate.py).
It left the bridge's MAC out, "which each tool leaves to chance": dockyard does not; it gives
the bridge a MAC derived from its name (spec network.bridge.mac: null), the same on every run
(and with it the bridge shows no carrier until a port is attached, as Docker's bridge with its
own MAC did). The shell, pyinfra and Ansible peers left the kernel's random MAC, so they did
less than dockyard, and the verify step passed a host whose bridge differed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import hoststate
from devtools.sandbox import Sandbox, sandbox
from dockyard.reconcilers.bridge import derived_mac

pytestmark = pytest.mark.root

BASELINE = Path(__file__).parents[2] / "bench" / "baseline.sh"


def dockyards_host(box: Sandbox) -> hoststate.State:
    box.reconcile("SPEC", check=True)
    return hoststate.snapshot(box)


def test_a_bridge_with_another_mac_is_another_host() -> None:
    with sandbox({"version": 1}, prefix="dky-a17") as box:
        wanted = dockyards_host(box)
        box.run(["ip", "link", "set", "docker0", "address", "02:00:00:00:00:01"], check=True)
        assert hoststate.differences(wanted, hoststate.snapshot(box)) != []


def test_the_shell_peer_leaves_dockyards_bridge() -> None:
    with sandbox({"version": 1}, prefix="dky-a17") as box:
        wanted = dockyards_host(box)
    with sandbox({"version": 1}, prefix="dky-a17") as box:
        spec = box.spec
        paths = [spec["root"], spec["pidfile"], spec["dns"]["host_resolv_conf"]]
        box.run(["sh", str(BASELINE), *paths], check=True)
        assert hoststate.differences(wanted, hoststate.snapshot(box)) == []


def test_every_peer_names_dockyards_mac() -> None:
    """pyinfra and Ansible live outside this environment (`make bench` installs them); what
    they are told to set is checked here, what they leave by the bench's verify step."""
    mac = derived_mac("docker0")
    target = BASELINE.parent / "docker_default"
    assert f'MAC = "{mac}"' in (target / "pyinfra_deploy.py").read_text()
    assert f'mac: "{mac}"' in (target / "playbook.yml").read_text()
    assert f"address {mac} type bridge" in BASELINE.read_text()
