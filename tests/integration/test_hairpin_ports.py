"""Which bridge ports get hairpin mode with userland_proxy: false, and that dockyard takes back
what it set: a container's veth (peer in another namespace) attached after adoption is turned
on; a veth joining the bridge to another port of this namespace, and an adopted bridge's
uplink, are never touched; back to userland_proxy: true, and `down`, turn off only what dockyard
turned on. Real kernel, in the sandbox's namespace."""

from __future__ import annotations

import pytest

from devtools.sandbox import Sandbox
from tests.integration.outside import container

pytestmark = pytest.mark.root

GATEWAY = "172.17.42.1"
PROXYLESS = {"version": 1, "network": {"bridge": {"existing": True}, "userland_proxy": False}}
PROXY = {"version": 1, "network": {"bridge": {"existing": True}, "userland_proxy": True}}


def hairpin(box: Sandbox, port: str) -> str:
    done = box.run(["cat", f"/sys/class/net/{port}/brport/hairpin_mode"], check=True)
    return done.stdout.strip()


def converge(box: Sandbox, spec: dict[str, object], *args: str) -> str:
    box.write_spec(spec)
    result = box.reconcile(*args, "SPEC")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_only_container_ports_dockyard_found_after_adoption_and_it_takes_them_back(
    box: Sandbox,
) -> None:
    for argv in (
        ["ip", "link", "add", "docker0", "type", "bridge"],
        ["ip", "addr", "add", f"{GATEWAY}/16", "dev", "docker0"],
        ["ip", "link", "set", "docker0", "up"],
        # two ports of this namespace joined by a veth (a second bridge's link): not a container
        ["ip", "link", "add", "dkyj0", "type", "veth", "peer", "dkyj1"],
        ["ip", "link", "set", "dkyj1", "up"],
    ):
        box.run(argv, check=True)
    # The uplink is a container-like veth, present when dockyard adopts the bridge.
    with container(box, "172.17.0.9", GATEWAY) as uplink:
        converge(box, PROXY)  # adoption, with the proxy: nothing is set, the uplink recorded
        box.run(["ip", "link", "set", "dkyj0", "master", "docker0", "up"], check=True)
        with container(box, "172.17.0.2", GATEWAY) as c1:
            preview = converge(box, PROXYLESS, "--dry-run")
            assert f"port {c1.port}" in preview, preview
            assert hairpin(box, c1.port) == "0"  # a dry run changes nothing
            out = converge(box, PROXYLESS)
            assert hairpin(box, c1.port) == "1", out
            assert hairpin(box, uplink.port) == "0", out
            assert hairpin(box, "dkyj0") == "0", out
            # A port hairpinned by someone else is not dockyard's to turn off.
            box.run(["ip", "link", "set", "dkyj0", "type", "bridge_slave", "hairpin", "on"])
            out = converge(box, PROXY)
            assert hairpin(box, c1.port) == "0", out
            assert hairpin(box, "dkyj0") == "1", out
            converge(box, PROXYLESS)
            assert hairpin(box, c1.port) == "1"
            # The bridge is in use, so down keeps it and what goes with it unless forced.
            refused = box.reconcile("down", "SPEC")
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert hairpin(box, c1.port) == "1", refused.stdout + refused.stderr
            out = converge(box, PROXYLESS, "down", "--force")
            assert hairpin(box, c1.port) == "0", out
            assert hairpin(box, "dkyj0") == "1", out
    box.run(["ip", "link", "del", "dkyj0"])
