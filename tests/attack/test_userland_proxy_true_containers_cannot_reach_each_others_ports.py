"""With `userland_proxy: true` (the default) a container cannot reach another container's
published port through the host, although the README promises it.

README, spec table, `network.userland_proxy`: "with `true` a published port is reached from
other hosts (and containers reach each other's through the host) only".

Evidence by traffic: C2 (a namespace with a veth on docker0) connects to the host's address,
port 8080, published to C1:80. dockyard's DNAT rule carries `! -i docker0` (Docker 1.6's rule,
iptables.go Forward: `if !c.HairpinMode { args = append(args, "!", "-i", c.Bridge) }`), so a
packet coming from the bridge is never DNATed; Docker 1.6 served it with docker-proxy listening
on the host port, dockyard runs no proxy: the connection is refused. Either the promise or the
behaviour is wrong; the test holds dockyard to the README's words.
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


def test_a_container_reaches_another_containers_published_port_through_the_host(
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
        # From another container, through the host: what the README promises.
        assert probe(c2.ns, HOST, 8080, timeout=2.0).endswith(" hello")
