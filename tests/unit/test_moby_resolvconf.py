"""moby's own resolvconf tests of the 1.x era (pkg/networkfs/resolvconf/resolvconf_test.go in
Docker 1.6, libnetwork/resolvconf in 1.7-1.13): their inputs and expected outputs, re-typed as
tables, run against dockyard's parser (`dockyard.state.resolv`) and its container resolv.conf
(`dockyard.reconcilers.dns`). Docker's functions map to dockyard's as:

- GetNameservers, GetSearchDomains -> resolv.parse(...).nameservers / .search
- GetNameserversAsCIDR -> the nameservers the bridge's subnet choice avoids (bridge.conflict)
- FilterResolvDns(conf, ipv6) -> dns.derive(spec with network.ipv6, host file conf)
- Build(path, dns, search) -> dns.render
"""

from __future__ import annotations

import ipaddress

import pytest

from dockyard.reconcilers.bridge import BridgeObserved, conflict
from dockyard.reconcilers.dns import Derived, DnsObserved, derive, render
from dockyard.spec import load_text
from dockyard.state import resolv

# TestGetNameservers (and TestGetNameserversAsCIDR: the same inputs, each address as /32).
GET_NAMESERVERS = [
    (
        "\nnameserver 1.2.3.4\nnameserver 40.3.200.10\nsearch example.com",
        ["1.2.3.4", "40.3.200.10"],
    ),
    ("search example.com", []),
    ("nameserver 1.2.3.4\nsearch example.com\nnameserver 4.30.20.100", ["1.2.3.4", "4.30.20.100"]),
    ("", []),
    ("  nameserver 1.2.3.4   ", ["1.2.3.4"]),
    ("search example.com\nnameserver 1.2.3.4\n#nameserver 4.3.2.1", ["1.2.3.4"]),
    ("search example.com\nnameserver 1.2.3.4 # not 4.3.2.1", ["1.2.3.4"]),
]

# TestGetSearchDomains
GET_SEARCH_DOMAINS = [
    ("search example.com", ["example.com"]),
    ("search example.com # ignored", ["example.com"]),
    (" \t  search \t example.com \t  ", ["example.com"]),
    (" \t  search \t example.com \t  # ignored", ["example.com"]),
    ("search foo.example.com example.com", ["foo.example.com", "example.com"]),
    ("\t   search   \t   foo.example.com \t example.com \t", ["foo.example.com", "example.com"]),
    (
        "\t   search   \t   foo.example.com \t example.com \t# ignored",
        ["foo.example.com", "example.com"],
    ),
    ("", []),
    ("# ignored", []),
    ("nameserver 1.2.3.4\nsearch foo.example.com example.com", ["foo.example.com", "example.com"]),
    (
        "nameserver 1.2.3.4\nsearch dup1.example.com dup2.example.com\n"
        "search foo.example.com example.com",
        ["foo.example.com", "example.com"],
    ),
    (
        "nameserver 1.2.3.4\nsearch foo.example.com example.com\nnameserver 4.30.20.100",
        ["foo.example.com", "example.com"],
    ),
]

# TestFilterResolvDns: (host resolv.conf, IPv6 enabled, what Docker wrote).
FILTER_RESOLV_DNS = [
    (
        "nameserver 10.16.60.14\nnameserver 10.16.60.21\n",
        False,
        "nameserver 10.16.60.14\nnameserver 10.16.60.21\n",
    ),
    (
        "nameserver 10.16.60.14\nnameserver 10.16.60.21\nnameserver 127.0.0.1\n",
        False,
        "nameserver 10.16.60.14\nnameserver 10.16.60.21\n",
    ),
    (
        "nameserver 10.16.60.14\nnameserver 127.0.0.1\nnameserver 10.16.60.21\n",
        False,
        "nameserver 10.16.60.14\nnameserver 10.16.60.21\n",
    ),
    (
        "nameserver 127.0.1.1\nnameserver 10.16.60.14\nnameserver 10.16.60.21\n",
        False,
        "nameserver 10.16.60.14\nnameserver 10.16.60.21\n",
    ),
    (
        "nameserver ::1\nnameserver 10.16.60.14\nnameserver 127.0.2.1\nnameserver 10.16.60.21\n",
        False,
        "nameserver 10.16.60.14\nnameserver 10.16.60.21\n",
    ),
    (
        "nameserver 10.16.60.14\nnameserver ::1\nnameserver 10.16.60.21\nnameserver ::1",
        False,
        "nameserver 10.16.60.14\nnameserver 10.16.60.21\n",
    ),
    (
        "nameserver 10.16.60.14\nnameserver 2002:dead:beef::1\nnameserver 10.16.60.21\n"
        "nameserver ::1",
        False,
        "nameserver 10.16.60.14\nnameserver 10.16.60.21\n",
    ),
    (
        "nameserver 10.16.60.14\nnameserver 2002:dead:beef::1\nnameserver 10.16.60.21\n"
        "nameserver ::1",
        True,
        "nameserver 10.16.60.14\nnameserver 2002:dead:beef::1\nnameserver 10.16.60.21\n",
    ),
    (
        "nameserver 127.0.0.1\nnameserver ::1\nnameserver 127.0.2.1",
        True,
        "\nnameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\n"
        "nameserver 2001:4860:4860::8844",
    ),
    (
        "nameserver 127.0.0.1\nnameserver ::1\nnameserver 127.0.2.1",
        False,
        "\nnameserver 8.8.8.8\nnameserver 8.8.4.4",
    ),
]


@pytest.mark.parametrize(("text", "expected"), GET_NAMESERVERS)
def test_get_nameservers(text: str, expected: list[str]) -> None:
    assert list(resolv.parse(text).nameservers) == expected
    assert resolv.parse(text).invalid == ()


@pytest.mark.parametrize(("text", "expected"), GET_NAMESERVERS)
def test_get_nameservers_as_cidr_feeds_the_bridge_choice(text: str, expected: list[str]) -> None:
    """Docker 1.6's bridge avoided each nameserver's /32; dockyard's candidates do too, with
    the same parser, so a commented-out one (4.3.2.1) rules nothing out."""
    obs = BridgeObserved(nameservers=resolv.parse(text).nameservers)
    for server in ["1.2.3.4", "40.3.200.10", "4.30.20.100", "4.3.2.1"]:
        subnet = ipaddress.IPv4Network(f"{server}/32")
        ruled_out = conflict(subnet, obs, "docker0")
        if server in expected:
            assert ruled_out == f"holds nameserver {server} of /etc/resolv.conf"
        else:
            assert ruled_out is None


@pytest.mark.parametrize(("text", "expected"), GET_SEARCH_DOMAINS)
def test_get_search_domains(text: str, expected: list[str]) -> None:
    assert list(resolv.parse(text).search) == expected


@pytest.mark.parametrize(("text", "ipv6", "docker_wrote"), FILTER_RESOLV_DNS)
def test_filter_resolv_dns(text: str, ipv6: bool, docker_wrote: str) -> None:
    spec = load_text("version: 1\nnetwork: {ipv6: true}\n" if ipv6 else "version: 1\n")
    derived = derive(spec, DnsObserved(host_file="/etc/resolv.conf", host_text=text))
    expected = list(resolv.parse(docker_wrote).nameservers)
    assert list(derived.nameservers) == expected
    written = [line for line in derived.content.splitlines() if line.startswith("nameserver")]
    assert written == [f"nameserver {s}" for s in expected]
    assert derived.fallback == ("8.8.8.8" in expected)


def test_build() -> None:
    """TestBuild: three nameservers and one search domain, in that order."""
    built = render(Derived("spec", ("ns1", "ns2", "ns3"), ("search1",))).content
    assert "nameserver ns1\nnameserver ns2\nnameserver ns3\nsearch search1\n" in built


def test_build_with_zero_length_domain_search() -> None:
    """TestBuildWithZeroLengthDomainSearch: search '.' writes no search line."""
    built = render(Derived("spec", ("ns1", "ns2", "ns3"), (".",))).content
    assert "nameserver ns1\nnameserver ns2\nnameserver ns3\n" in built
    assert "search ." not in built
    assert "search" not in built.split("\n", 2)[2]


# setupContainerDns (daemon/container.go, Docker 1.6) has no test table of its own; its rule,
# re-typed from the source as rows: once --dns or --dns-search is given, the host's nameservers
# and search domains are read, the given ones replace them, and Build writes only those lines.
# Docker 1.9 (libnetwork's sandbox setupDNS) added --dns-opt to the same rule, the host's
# options kept unless it is given: `dns.options` is that flag, so options follow 1.9.
# (host resolv.conf, dns.servers, dns.search, dns.options, the file's lines after the header)
HOST = "nameserver 10.0.0.1\nsearch corp.example\noptions ndots:2\nsortlist 10.0.0.0\n"
SETUP_CONTAINER_DNS = [
    # neither: FilterResolvDns of the host's file, its other lines kept
    (HOST, [], [], [], HOST),
    # --dns only: the host's search domains (and, since 1.9, options) stay
    (
        HOST,
        ["1.1.1.1"],
        [],
        [],
        "nameserver 1.1.1.1\nsearch corp.example\noptions ndots:2\n",
    ),
    # --dns-search only: the host's nameservers stay
    (
        HOST,
        [],
        ["a.example"],
        [],
        "nameserver 10.0.0.1\nsearch a.example\noptions ndots:2\n",
    ),
    # both
    (
        HOST,
        ["1.1.1.1"],
        ["a.example"],
        [],
        "nameserver 1.1.1.1\nsearch a.example\noptions ndots:2\n",
    ),
    # --dns-opt only (1.9)
    (HOST, [], [], ["rotate"], "nameserver 10.0.0.1\nsearch corp.example\noptions rotate\n"),
    # all three: nothing of the host's file is left
    (
        HOST,
        ["1.1.1.1"],
        ["a.example"],
        ["rotate"],
        "nameserver 1.1.1.1\nsearch a.example\noptions rotate\n",
    ),
    # --dns-search=. replaces the host's domains with none: no search line at all
    (HOST, ["1.1.1.1"], ["."], [], "nameserver 1.1.1.1\noptions ndots:2\n"),
    (HOST, [], ["."], [], "nameserver 10.0.0.1\noptions ndots:2\n"),
    # a host without search domains or options gives none
    ("nameserver 10.0.0.1\n", ["1.1.1.1"], [], [], "nameserver 1.1.1.1\n"),
]


@pytest.mark.parametrize(
    ("host", "servers", "search", "options", "body"),
    SETUP_CONTAINER_DNS,
    ids=[
        "neither",
        "servers",
        "search",
        "servers-and-search",
        "options",
        "all-three",
        "servers-and-search-dot",
        "search-dot",
        "servers-host-without-search",
    ],
)
def test_setup_container_dns(
    host: str, servers: list[str], search: list[str], options: list[str], body: str
) -> None:
    spec = load_text(
        f"version: 1\ndns: {{servers: {servers}, search: {search}, options: {options}}}\n"
    )
    derived = derive(spec, DnsObserved(host_file="/etc/resolv.conf", host_text=host))
    assert derived.error is None
    assert derived.content.split("\n", 2)[2] == body
