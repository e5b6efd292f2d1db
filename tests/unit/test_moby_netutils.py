"""moby's network utility tests of Docker 1.6 (daemon/networkdriver/network_test.go; the same
tables in libnetwork's netutils for 1.7-1.13), re-typed as tables and run against dockyard's
bridge logic, which this file only tests (it is not changed here):

- NetworkOverlaps, CheckRouteOverlaps, CheckNameserverOverlaps -> bridge.conflict(candidate,
  observation): why a candidate subnet is ruled out, or None;
- NetworkRange -> the subnet of an explicit bridge address (bridge.bridge_subnet), whose first
  and last addresses bound the published ports' container_ip (spec rules);
- configureBridge's loop over its twelve ranges -> bridge.desired_address for `auto`.

Docker 1.6 counted every route; dockyard counts on-link ones (and blackhole, unreachable,
prohibit), not those via a gateway (README, deliberate differences). moby's routes carry no
gateway, so they are on-link routes here.
"""

from __future__ import annotations

import ipaddress

import pytest

from dockyard.errors import SpecError
from dockyard.reconcilers.bridge import (
    BridgeObserved,
    RouteFact,
    bridge_subnet,
    conflict,
    desired_address,
)
from dockyard.spec import load_text


def net(cidr: str) -> ipaddress.IPv4Network:
    """Go's net.ParseCIDR: the network of an address with its prefix."""
    return ipaddress.IPv4Interface(cidr).network


def on_link(*cidrs: str) -> BridgeObserved:
    return BridgeObserved(routes=tuple(RouteFact(str(net(c)), "eth0") for c in cidrs))


# TestNetworkOverlaps: (netX, netY, overlap)
NETWORK_OVERLAPS = [
    ("172.16.0.1/24", "172.16.0.1/25", True),  # Y starts at X's first IP, ends within X
    ("172.16.0.1/24", "172.16.0.128/25", True),  # Y starts within X, ends at X's last IP
    ("172.16.0.1/24", "172.16.0.64/25", True),  # Y starts and ends within X
    ("172.16.0.1/24", "172.16.0.1/23", True),  # Y starts at X's first IP, ends outside X
    ("172.16.1.1/24", "172.16.0.1/23", True),  # Y starts before X, ends at X's last IP
    ("172.16.1.1/24", "172.16.0.1/22", True),  # Y starts before X, ends after it
    ("172.16.1.1/25", "172.16.0.1/24", False),  # Y starts and ends before X
    ("172.16.1.1/25", "172.16.2.1/24", False),  # X starts and ends before Y
]

# TestCheckRouteOverlaps: the routes, then (candidate, ruled out)
ROUTES = ("10.0.2.0/32", "10.0.3.0/24", "10.0.42.0/24", "172.16.42.0/24", "192.168.142.0/24")
CHECK_ROUTE_OVERLAPS = [("172.16.0.1/24", None), ("10.0.2.0/24", "10.0.2.0/32")]

# TestNonOverlapingNameservers, TestOverlapingNameservers, TestCheckNameserverOverlaps:
# (nameservers, candidate, the nameserver that rules it out)
CHECK_NAMESERVER_OVERLAPS = [
    (["127.0.0.1"], "192.168.0.1/24", None),
    (["192.168.0.1"], "192.168.0.1/24", "192.168.0.1"),
    (["10.0.2.3", "192.168.102.1"], "10.0.2.3/32", "10.0.2.3"),
    (["10.0.2.3", "192.168.102.1"], "192.168.102.2/32", None),
    # Docker made "2001:db8::1/32" of an IPv6 one, which never overlaps an IPv4 candidate.
    (["2001:db8::1"], "32.1.0.0/16", None),
]

# TestNetworkRange: (network, first, last)
NETWORK_RANGE = [
    ("192.168.0.1/24", "192.168.0.0", "192.168.0.255"),
    ("10.0.0.1/8", "10.0.0.0", "10.255.255.255"),
    ("10.1.2.3/8", "10.0.0.0", "10.255.255.255"),
    ("10.1.2.3/32", "10.1.2.3", "10.1.2.3"),
    ("10.1.2.3/31", "10.1.2.2", "10.1.2.3"),
    ("10.1.2.3/26", "10.1.2.0", "10.1.2.63"),
]

# Docker 1.6's configureBridge: the first of its ranges that overlaps no nameserver and no
# route. (routes, nameservers, the range it took) -- worked out from its list by hand.
CANDIDATE_SELECTION = [
    (ROUTES, [], "172.17.42.1/16"),
    ((*ROUTES, "172.17.0.0/16"), [], "10.1.42.1/16"),  # 10.0.0.0/16 holds 10.0.2.0/32
    (ROUTES, ["172.17.0.1", "10.1.1.1"], "10.42.42.1/16"),
    ((*ROUTES, "172.17.0.0/16", "10.0.0.0/8"), [], "172.16.43.1/24"),  # 172.16.42.0/24 too
    (("172.16.0.0/12", "10.0.0.0/8"), ["192.168.42.7"], "192.168.43.1/24"),
]


@pytest.mark.parametrize(("x", "y", "overlap"), NETWORK_OVERLAPS)
def test_network_overlaps(x: str, y: str, overlap: bool) -> None:
    expected = f"overlaps route {net(y)} dev eth0" if overlap else None
    assert conflict(net(x), on_link(y), "docker0") == expected
    expected = f"overlaps route {net(x)} dev eth0" if overlap else None
    assert conflict(net(y), on_link(x), "docker0") == expected  # symmetric


@pytest.mark.parametrize(("candidate", "route"), CHECK_ROUTE_OVERLAPS)
def test_check_route_overlaps(candidate: str, route: str | None) -> None:
    expected = f"overlaps route {route} dev eth0" if route else None
    assert conflict(net(candidate), on_link(*ROUTES), "docker0") == expected


@pytest.mark.parametrize(("servers", "candidate", "culprit"), CHECK_NAMESERVER_OVERLAPS)
def test_check_nameserver_overlaps(servers: list[str], candidate: str, culprit: str) -> None:
    obs = BridgeObserved(nameservers=tuple(servers))
    expected = f"holds nameserver {culprit} of /etc/resolv.conf" if culprit else None
    assert conflict(net(candidate), obs, "docker0") == expected


def published(address: str, container_ip: ipaddress.IPv4Address) -> str:
    return (
        f"version: 1\nnetwork:\n  bridge: {{address: {address}}}\n  published_ports:\n"
        f"  - {{host_port: 8080, container_ip: {container_ip}, container_port: 80}}\n"
    )


@pytest.mark.parametrize(("address", "first", "last"), NETWORK_RANGE)
def test_network_range(address: str, first: str, last: str) -> None:
    spec = load_text(f"version: 1\nnetwork: {{bridge: {{address: {address}}}}}\n")
    subnet = bridge_subnet(spec, BridgeObserved())
    assert subnet is not None
    assert (str(subnet.network_address), str(subnet.broadcast_address)) == (first, last)
    # The same bounds decide which container_ip a published port may name.
    for inside in {ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)}:
        load_text(published(address, inside))
    for outside in (ipaddress.IPv4Address(first) - 1, ipaddress.IPv4Address(last) + 1):
        with pytest.raises(SpecError) as e:
            load_text(published(address, outside))
        assert e.value.problems[0].endswith(f"is outside the bridge subnet {subnet}")


@pytest.mark.parametrize(("routes", "servers", "chosen"), CANDIDATE_SELECTION)
def test_candidate_selection(routes: tuple[str, ...], servers: list[str], chosen: str) -> None:
    obs = BridgeObserved(
        routes=on_link(*routes).routes, nameservers=tuple(servers), resolv_conf="/etc/resolv.conf"
    )
    choice = desired_address(load_text("version: 1\n"), obs)
    assert (str(choice.address), choice.why) == (chosen, "first free candidate")
