"""What dockyard builds, checked by traffic: real packets between namespaces the tests create.

The sandbox's namespace is the host; "outside" (tests/integration/outside.py) is another host
on its network, 198.51.100.2, reaching it at 198.51.100.1; containers are namespaces with a veth
on docker0 (172.17.42.1/16, the first of Docker's ranges). Every server answers with the address
it saw a packet come from, so each test sees what NAT did on the way.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.sandbox import Sandbox
from dockyard.reconcilers.hairpin import PROXY_NEEDED
from tests.integration.outside import (
    ADDRESS as OUTSIDE,
)
from tests.integration.outside import (
    SANDBOX_ADDRESS as HOST,
)
from tests.integration.outside import (
    Outside,
    container,
    outside,
    probe,
    server,
)
from tests.integration.watching import PATIENCE, Watcher

pytestmark = pytest.mark.root

GATEWAY = "172.17.42.1"
C1, C2, C3 = "172.17.0.2", "172.17.0.3", "172.17.0.4"
BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"
BLOCKED = 1.0  # seconds a probe waits for an answer that must not come


def port(host_port: int, container_ip: str, container_port: int, **more: Any) -> dict[str, Any]:
    return {
        "host_port": host_port,
        "container_ip": container_ip,
        "container_port": container_port,
        **more,
    }


def converge(box: Sandbox, **network: Any) -> subprocess.CompletedProcess[str]:
    box.write_spec({"version": 1, "network": network})
    result = box.reconcile("SPEC")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout
    return result


@pytest.fixture
def world(box: Sandbox) -> Iterator[Outside]:
    with outside(box) as out:
        yield out


def test_egress_is_masqueraded_and_published_tcp_and_udp_reach_the_container(
    box: Sandbox, world: Outside
) -> None:
    converge(
        box,
        published_ports=[port(8080, C1, 80), port(5353, C1, 53, proto="udp")],
    )
    with (
        container(box, C1, GATEWAY) as c1,
        server(c1.ns, "0.0.0.0", 80),
        server(c1.ns, "0.0.0.0", 53, "udp"),
        server(world.ns, OUTSIDE, 9000),
    ):
        # Out: the world sees the host's own address, never the container's.
        assert probe(c1.ns, OUTSIDE, 9000) == f"{HOST} hello"
        # In: the container sees the client's own address (DNAT only).
        assert probe(world.ns, HOST, 8080) == f"{OUTSIDE} hello"
        assert probe(world.ns, HOST, 5353, "udp") == f"{OUTSIDE} hello"
        # Only what is published: another port is the host's own, where nothing listens.
        assert probe(world.ns, HOST, 8081) == "refused"


def test_host_ip_and_default_bind_ip_publish_on_one_address_only(
    box: Sandbox, world: Outside
) -> None:
    second = "198.51.100.3"
    box.run(["ip", "addr", "add", f"{second}/24", "dev", "dkyout0"], check=True)
    converge(
        box,
        default_bind_ip=second,
        published_ports=[port(8080, C1, 80), port(8081, C1, 80, host_ip=HOST)],
    )
    with container(box, C1, GATEWAY) as c1, server(c1.ns, "0.0.0.0", 80):
        assert probe(world.ns, second, 8080) == f"{OUTSIDE} hello"  # default_bind_ip
        assert probe(world.ns, HOST, 8080) == "refused"
        assert probe(world.ns, HOST, 8081) == f"{OUTSIDE} hello"  # host_ip
        assert probe(world.ns, second, 8081) == "refused"


def test_icc_false_isolates_containers_with_bridge_nf_call_iptables_at_0_beforehand(
    box: Sandbox,
) -> None:
    box.set_sysctl(BRIDGE_NF, "0")
    result = converge(box, icc=False)
    assert f"~ sysctl {BRIDGE_NF}  (icc: false: frames between containers bypass iptables)" in (
        result.stdout
    )
    assert box.sysctl(BRIDGE_NF) == "1"
    with (
        container(box, C1, GATEWAY) as c1,
        container(box, C2, GATEWAY) as c2,
        server(c2.ns, "0.0.0.0", 80),
    ):
        assert probe(c1.ns, C2, 80, timeout=BLOCKED) == "timeout"
        # The setting is what isolates: put back to 0 by hand, the DROP rule sees nothing...
        box.set_sysctl(BRIDGE_NF, "0")
        assert probe(c1.ns, C2, 80) == f"{C1} hello"
        # ...and the next run repairs it.
        plan = box.reconcile("plan", "SPEC", "--detailed-exitcode")
        assert plan.returncode == 2 and f"~ sysctl {BRIDGE_NF}" in plan.stdout
        converge(box, icc=False)
        assert probe(c1.ns, C2, 80, timeout=BLOCKED) == "timeout"
        converge(box, icc=True)
        assert probe(c1.ns, C2, 80) == f"{C1} hello"


def test_with_ipv6_bridged_ipv6_is_filtered_too(box: Sandbox) -> None:
    ip6 = BRIDGE_NF.replace("iptables", "ip6tables")
    for name in (BRIDGE_NF, ip6):
        box.set_sysctl(name, "0")
    converge(box, icc=False)
    assert (box.sysctl(BRIDGE_NF), box.sysctl(ip6)) == ("1", "0")
    converge(box, icc=False, ipv6=True)
    assert box.sysctl(ip6) == "1"


def test_without_br_netfilter_icc_false_fails_in_dockers_words(box: Sandbox) -> None:
    """A kernel without br_netfilter: /proc/sys/net/bridge hidden under an empty tmpfs in a
    mount namespace of dockyard's own (this kernel has the module built in)."""
    box.write_spec({"version": 1, "network": {"icc": False}})
    hide = 'mount -t tmpfs none /proc/sys/net/bridge && exec "$@"'
    argv = ["unshare", "-m", "sh", "-c", hide, "sh", *box.dockyard("SPEC")[4:]]
    result = box.run(argv)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    refused = (
        "cannot restrict inter-container communication: please ensure that br_netfilter "
        "kernel module is loaded"
    )
    assert f"bridge_netfilter: {refused}" in result.stderr, result.stderr
    # The rest of the network converged: the bridge and the firewall do not depend on it.
    assert box.run(["ip", "link", "show", "docker0"]).returncode == 0
    assert "-j DROP" in box.run(["iptables-save", "-t", "filter"]).stdout


def test_userland_proxy_false_reaches_published_ports_from_localhost_and_hairpin(
    box: Sandbox, world: Outside
) -> None:
    box.set_sysctl(BRIDGE_NF, "0")
    ports = [port(8080, C1, 80), port(8081, C1, 80, host_ip="127.0.0.1")]
    result = converge(box, published_ports=ports)  # userland_proxy: true, Docker's default
    assert (
        "Warning: 1 published port(s) listen on 127.0.0.0/8 only and cannot be reached: "
        "Docker reached them through docker-proxy, a process dockyard does not run"
    ) in result.stdout
    shown = json.loads(box.reconcile("show", "SPEC", "-o", "json").stdout)
    assert shown["observed"]["hairpin"]["planned"]["published_ports_reached"] == PROXY_NEEDED
    with (
        container(box, C1, GATEWAY) as c1,
        container(box, C2, GATEWAY) as c2,
        server(c1.ns, "0.0.0.0", 80),
    ):
        assert probe(world.ns, HOST, 8080) == f"{OUTSIDE} hello"
        # Docker 1.6 went through docker-proxy for these; dockyard runs no proxy.
        assert probe(box.ns, "127.0.0.1", 8080) == "refused"
        assert probe(box.ns, "127.0.0.1", 8081) == "refused"
        assert probe(c1.ns, HOST, 8080) == "refused"
        assert probe(c2.ns, HOST, 8080) == "refused"

        result = converge(box, published_ports=ports, userland_proxy=False)
        assert f"~ sysctl {BRIDGE_NF}" in result.stdout
        # From the host itself, to any of its addresses: masqueraded to the bridge's address.
        assert probe(box.ns, "127.0.0.1", 8080) == f"{GATEWAY} hello"
        assert probe(box.ns, "127.0.0.1", 8081) == f"{GATEWAY} hello"
        assert probe(box.ns, HOST, 8080) == f"{GATEWAY} hello"
        # A container to its own published port: hairpin, the reply comes back through NAT.
        assert probe(c1.ns, HOST, 8080) == f"{GATEWAY} hello"
        # Another container to it, through the host: its own address, as with Docker 1.7.
        assert probe(c2.ns, HOST, 8080) == f"{C2} hello"
        assert probe(world.ns, HOST, 8080) == f"{OUTSIDE} hello"
        assert box.sysctl("net.ipv4.conf.docker0.route_localnet") == "1"
        for veth in (c1.port, c2.port):
            assert hairpin(box, veth) == "1"
        assert box.reconcile("plan", "SPEC", "--detailed-exitcode").returncode == 0

        # Each piece is needed: undone by hand, its path fails; the next run repairs it.
        def self_hairpin() -> str:
            return probe(c1.ns, HOST, 8080, timeout=BLOCKED)

        def localhost() -> str:
            return probe(box.ns, "127.0.0.1", 8080, timeout=BLOCKED)

        def across() -> str:
            return probe(c2.ns, HOST, 8080, timeout=BLOCKED)

        pieces: dict[str, tuple[Callable[[], object], Callable[[], str], str]] = {
            "hairpin mode": (
                lambda: box.run(["bridge", "link", "set", "dev", c1.port, "hairpin", "off"]),
                self_hairpin,
                f"{GATEWAY} hello",
            ),
            "the hairpin MASQUERADE": (
                lambda: delete_rule(box, "-j DOCKYARD-HAIRPIN"),
                self_hairpin,
                f"{GATEWAY} hello",
            ),
            "route_localnet": (
                lambda: box.set_sysctl("net.ipv4.conf.docker0.route_localnet", "0"),
                localhost,
                f"{GATEWAY} hello",
            ),
            "the --src-type LOCAL MASQUERADE": (
                lambda: delete_rule(box, "--src-type LOCAL"),
                localhost,
                f"{GATEWAY} hello",
            ),
            "bridge-nf-call-iptables": (
                lambda: box.set_sysctl(BRIDGE_NF, "0"),
                across,
                f"{C2} hello",
            ),
        }
        for what, (undo, path, working) in pieces.items():
            undo()
            assert path() == "timeout", f"without {what}"
            converge(box, published_ports=ports, userland_proxy=False)
            assert path() == working, f"{what} repaired"

        # Back to the proxy: dockyard takes back what it set, and localhost is refused again.
        converge(box, published_ports=ports)
        assert box.sysctl("net.ipv4.conf.docker0.route_localnet") == "0"
        assert box.sysctl(BRIDGE_NF) == "0"  # what it was before dockyard set it
        for veth in (c1.port, c2.port):
            assert hairpin(box, veth) == "0"
        assert probe(box.ns, "127.0.0.1", 8080) == "refused"
        assert probe(c2.ns, HOST, 8080) == "refused"


def test_down_takes_back_route_localnet_on_a_bridge_that_stays(box: Sandbox) -> None:
    """An adopted bridge (Docker -b) outlives `down`; what dockyard set on it does not."""
    box.run(["ip", "link", "add", "docker0", "type", "bridge"], check=True)
    box.run(["ip", "addr", "add", f"{GATEWAY}/16", "dev", "docker0"], check=True)
    box.run(["ip", "link", "set", "docker0", "up"], check=True)
    converge(box, bridge={"existing": True}, userland_proxy=False)
    assert box.sysctl("net.ipv4.conf.docker0.route_localnet") == "1"
    result = box.reconcile("down", "SPEC")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "~ sysctl net.ipv4.conf.docker0.route_localnet" in result.stdout
    assert box.sysctl("net.ipv4.conf.docker0.route_localnet") == "0"
    assert box.run(["ip", "link", "show", "docker0"]).returncode == 0


def delete_rule(box: Sandbox, marker: str) -> None:
    """Deletes by hand the rule of nat POSTROUTING that holds `marker`."""
    saved = box.run(["iptables-save", "-t", "nat"], check=True).stdout.splitlines()
    [line] = [x for x in saved if x.startswith("-A POSTROUTING ") and marker in x]
    box.run(["iptables", "-w", "-t", "nat", "-D", *shlex.split(line)[1:]], check=True)


def hairpin(box: Sandbox, veth: str) -> str:
    """The port's hairpin mode as sysfs shows it (dockyard sets it over netlink)."""
    return box.run(["cat", f"/sys/class/net/{veth}/brport/hairpin_mode"], check=True).stdout.strip()


def test_a_watch_sets_hairpin_mode_on_a_port_that_appears_later(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    box.write_spec(
        {
            "version": 1,
            "network": {"userland_proxy": False, "published_ports": [port(8080, C3, 80)]},
        }
    )
    w = watcher()
    w.ready()
    with container(box, C3, GATEWAY) as c3, server(c3.ns, "0.0.0.0", 80):
        w.wait_for(
            lambda e: e["event"] == "change" and e["resource"] == f"port {c3.port}",
            f"hairpin mode set on {c3.port}",
        )
        assert hairpin(box, c3.port) == "1"
        assert probe(c3.ns, "172.17.42.1", 8080) == f"{GATEWAY} hello"
    assert w.stop() == 0


# One TCP connection kept open across runs: each line written is echoed by the server.
_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile("rw")
for line in sys.stdin:
    f.write(line)
    f.flush()
    print(f.readline().strip(), flush=True)
"""


def test_an_established_connection_survives_a_reapply_that_adds_ports(
    box: Sandbox, world: Outside
) -> None:
    first = [port(8080, C1, 80)]
    converge(box, published_ports=first)
    more = [port(20000 + i, C1, 1000 + i) for i in range(60)]  # past BULK: one rewrite
    with container(box, C1, GATEWAY) as c1, server(c1.ns, "0.0.0.0", 80):
        client = subprocess.Popen(
            ["ip", "netns", "exec", world.ns, sys.executable, "-c", _CLIENT, HOST, "8080"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert said(client, "one") == f"{OUTSIDE} one"
            converge(box, published_ports=first + more)  # appended to dockyard's chains
            assert said(client, "two") == f"{OUTSIDE} two"
            converge(box, published_ports=first + more[1:])  # flushed and written anew
            assert said(client, "three") == f"{OUTSIDE} three"
            assert probe(world.ns, HOST, 8080) == f"{OUTSIDE} hello"  # and new ones still come
        finally:
            client.kill()
            client.wait(PATIENCE)


def said(client: subprocess.Popen[str], line: str) -> str:
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write(f"{line}\n")
    client.stdin.flush()
    return client.stdout.readline().strip()
