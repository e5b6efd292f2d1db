"""With `userland_proxy: true` (the default) a container cannot reach another container's
published port through the host; with `false` it can. The README promised the first works.

The reviewer's finding: README, spec table, `network.userland_proxy`, said "with `true` a
published port is reached from other hosts (and containers reach each other's through the host)
only". By traffic it is refused: dockyard's DNAT rule carries `! -i docker0` (Docker 1.6's rule,
iptables.go Forward: `if !c.HairpinMode { args = append(args, "!", "-i", c.Bridge) }`), so a
packet coming from the bridge is never DNATed; Docker 1.6 served it with docker-proxy listening
on the host port, and dockyard runs no proxy. Making it work without a proxy with `true` means
DNATing from the bridge, which is exactly Docker 1.7's `--userland-proxy=false` (and needs
bridge-nf-call-iptables for the reply's un-NAT): that is what `false` is for. So the README was
corrected (the promise was wrong, the behaviour is Docker 1.6's minus its proxy), and this test
now holds dockyard to the corrected words: refused with `true`, reached with `false`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.sandbox import Sandbox
from tests.integration.outside import SANDBOX_ADDRESS as HOST
from tests.integration.outside import Outside, container, outside, probe, server

pytestmark = pytest.mark.root

GATEWAY = "172.17.42.1"
C1, C2 = "172.17.0.2", "172.17.0.3"


@pytest.fixture
def world(box: Sandbox) -> Iterator[Outside]:
    with outside(box) as out:
        yield out


def test_a_container_reaches_another_containers_published_port_only_without_the_proxy(
    box: Sandbox, world: Outside
) -> None:
    ports = [{"host_port": 8080, "container_ip": C1, "container_port": 80}]
    box.write_spec({"version": 1, "network": {"published_ports": ports}})
    result = box.reconcile("SPEC")
    assert result.returncode == 0, result.stdout + result.stderr
    with (
        container(box, C1, GATEWAY) as c1,
        container(box, C2, GATEWAY) as c2,
        server(c1.ns, "0.0.0.0", 80),
    ):
        # From another host: works (the control).
        assert probe(world.ns, HOST, 8080).endswith(" hello")
        # From another container, through the host: Docker 1.6's docker-proxy; none here.
        assert probe(c2.ns, HOST, 8080, timeout=2.0) == "refused"
        spec = {"version": 1, "network": {"published_ports": ports, "userland_proxy": False}}
        box.write_spec(spec)
        result = box.reconcile("SPEC")
        assert result.returncode == 0, result.stdout + result.stderr
        assert probe(c2.ns, HOST, 8080) == f"{C2} hello"
        assert probe(world.ns, HOST, 8080).endswith(" hello")
