"""Every validation rule, with the exact message a user sees."""

from __future__ import annotations

import pytest

from dockyard.errors import SpecError
from dockyard.spec import Spec, load_text


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    return e.value.problems


CASES = [
    (
        "adopted bridge with an address",
        "version: 1\nnetwork:\n  bridge:\n    existing: true\n    address: 10.9.0.1/24\n",
        "spec.yaml:5:14: network.bridge.address: cannot be set together with "
        "network.bridge.existing: true; an adopted bridge keeps its own address "
        "(Docker: -b and --bip are mutually exclusive)",
    ),
    (
        "icc off without iptables",
        "version: 1\nnetwork:\n  iptables: false\n  icc: false\n",
        "spec.yaml:4:8: network.icc: icc: false needs iptables: true, since inter-container "
        "traffic is blocked by an iptables rule (Docker: --iptables=false with --icc=false is "
        "refused); set network.iptables: true or remove icc: false",
    ),
    (
        "networking disabled but adopting",
        "version: 1\nnetwork: {bridge: {name: none, existing: true}}\n",
        "spec.yaml:2:42: network.bridge.existing: cannot be true when network.bridge.name is "
        "none (networking disabled)",
    ),
    (
        "networking disabled with an address",
        "version: 1\nnetwork: {bridge: {name: none, address: 10.1.0.1/16}}\n",
        "spec.yaml:2:41: network.bridge.address: has no effect when network.bridge.name is none "
        "(networking disabled); remove it",
    ),
    (
        "selinux with btrfs",
        "version: 1\nselinux: true\nstorage:\n  driver: btrfs\n",
        "spec.yaml:4:11: storage.driver: btrfs does not support SELinux; set selinux: false or "
        "choose another driver",
    ),
    (
        "relative root",
        "version: 1\nroot: var/lib/docker\n",
        "spec.yaml:2:7: root: must be an absolute path (start with /), got 'var/lib/docker'",
    ),
    (
        "root with ..",
        "version: 1\nroot: /var/lib/../docker\n",
        "spec.yaml:2:7: root: must not contain '..', got '/var/lib/../docker'",
    ),
    (
        "pidfile with ..",
        "version: 1\npidfile: /run/../etc/passwd\n",
        "spec.yaml:2:10: pidfile: must not contain '..', got '/run/../etc/passwd'",
    ),
    (
        "relative pidfile",
        "version: 1\npidfile: docker.pid\n",
        "spec.yaml:2:10: pidfile: must be an absolute path (start with /), got 'docker.pid'",
    ),
    (
        "root is /",
        "version: 1\nroot: /\n",
        "spec.yaml:2:7: root: must not be / itself; use a directory such as /var/lib/docker",
    ),
    (
        "state_dir inside root",
        "version: 1\nroot: /srv/docker\nstate_dir: /srv/docker/dockyard\n",
        "spec.yaml:3:12: state_dir: must be outside root: dockyard's ledger is not Docker's data",
    ),
    (
        "unknown top-level key",
        "version: 1\nnetwrok: {}\n",
        "spec.yaml:2:1: netwrok: unknown field; did you mean 'network'? expected one of: "
        "version, root, pidfile, state_dir, selinux, preflight, network, dns, storage, exec",
    ),
    (
        "unknown nested key",
        "version: 1\nnetwork:\n  bridge:\n    adress: 10.9.0.1/24\n",
        "spec.yaml:4:5: network.bridge.adress: unknown field; did you mean 'address'? expected "
        "one of: name, existing, address, address_pools, mtu, mac",
    ),
    (
        "unknown key in a list item",
        "version: 1\nnetwork:\n  published_ports:\n    - {host_port: 80, container_ip: "
        "172.17.0.2, container_port: 80, hostport: 1}\n",
        "spec.yaml:4:69: network.published_ports[0].hostport: unknown field; did you mean "
        "'host_port'? expected one of: proto, host_ip, host_port, container_ip, container_port",
    ),
    (
        "version 2",
        "version: 2\n",
        "spec.yaml:1:10: version: this dockyard reads spec version 1 only, got 2",
    ),
    ("version missing", "root: /var/lib/docker\n", "spec.yaml:1:1: version: is required"),
    (
        "network address as bridge address",
        "version: 1\nnetwork: {bridge: {address: 10.9.0.0/24}}\n",
        "spec.yaml:2:29: network.bridge.address: 10.9.0.0/24 is the network's own network "
        "address; give the bridge a host address such as 10.9.0.1/24",
    ),
    (
        "bridge address without prefix",
        "version: 1\nnetwork: {bridge: {address: 10.9.0.1}}\n",
        "spec.yaml:2:29: network.bridge.address: must be an IPv4 address with a prefix length, "
        "such as 172.17.42.1/16, got '10.9.0.1'",
    ),
    (
        "mtu out of range",
        "version: 1\nnetwork: {bridge: {mtu: 70000}}\n",
        "spec.yaml:2:25: network.bridge.mtu: must be auto or a number from 68 to 65535, got 70000",
    ),
    (
        "interface name too long",
        "version: 1\nnetwork: {bridge: {name: a-very-long-bridge}}\n",
        "spec.yaml:2:26: network.bridge.name: must be a Linux interface name: 1 to 15 characters, "
        "no spaces, '/' or ':', got 'a-very-long-bridge'",
    ),
    (
        "multicast mac",
        "version: 1\nnetwork: {bridge: {mac: '03:00:00:00:00:01'}}\n",
        "spec.yaml:2:25: network.bridge.mac: 03:00:00:00:00:01 is a multicast address; a bridge "
        "needs a unicast MAC",
    ),
    (
        "unquoted kernel version",
        "version: 1\npreflight: {min_kernel: 3.10}\n",
        'spec.yaml:2:25: preflight.min_kernel: must be a quoted string such as "3.10": '
        "unquoted, YAML reads a number (3.1)",
    ),
    (
        "uname architecture name",
        "version: 1\npreflight: {arch: [x86_64]}\n",
        "spec.yaml:2:20: preflight.arch[0]: must be one of amd64, 386, arm, arm64, ppc64le, "
        "s390x, riscv64, got 'x86_64' (Docker calls x86_64 amd64)",
    ),
    (
        "empty arch list",
        "version: 1\npreflight: {arch: []}\n",
        "spec.yaml:2:19: preflight.arch: List should have at least 1 item after validation, not 0",
    ),
    (
        "port out of range",
        "version: 1\nnetwork:\n  published_ports: [{host_port: 0, container_ip: 172.17.0.2, "
        "container_port: 80}]\n",
        "spec.yaml:3:33: network.published_ports[0].host_port: must be a port number from 1 to "
        "65535, got 0",
    ),
    (
        "port published twice",
        "version: 1\nnetwork:\n  published_ports:\n"
        "    - {host_port: 80, container_ip: 172.17.0.2, container_port: 80}\n"
        "    - {proto: TCP, host_port: 80, container_ip: 172.17.0.3, container_port: 81}\n",
        "spec.yaml:5:7: network.published_ports[1]: tcp 0.0.0.0:80 is already published by "
        "network.published_ports[0]",
    ),
    (
        "container outside the bridge subnet",
        "version: 1\nnetwork:\n  bridge: {address: 10.9.0.1/24}\n  published_ports:\n"
        "    - {host_port: 80, container_ip: 172.17.0.2, container_port: 80}\n",
        "spec.yaml:5:37: network.published_ports[0].container_ip: 172.17.0.2 is outside the "
        "bridge subnet 10.9.0.0/24",
    ),
    (
        "unknown protocol",
        "version: 1\nnetwork:\n  published_ports: [{proto: sctp, host_port: 1, "
        "container_ip: 172.17.0.2, container_port: 1}]\n",
        "spec.yaml:3:29: network.published_ports[0].proto: Input should be 'tcp' or 'udp', "
        "got 'sctp'",
    ),
    (
        "storage driver listed twice",
        "version: 1\nstorage: {priority: [vfs, overlay2, vfs]}\n",
        "spec.yaml:2:37: storage.priority[2]: vfs is listed twice",
    ),
    (
        "unknown storage driver",
        "version: 1\nstorage: {driver: zfs}\n",
        "spec.yaml:2:19: storage.driver: Input should be 'auto', 'aufs', 'btrfs', "
        "'devicemapper', 'overlay2', 'overlay' or 'vfs', got 'zfs'",
    ),
    (
        "wrong type",
        "version: 1\nnetwork: {iptables: maybe}\n",
        "spec.yaml:2:21: network.iptables: Input should be a valid boolean, unable to interpret "
        "input",
    ),
    (
        "a section that is not a mapping",
        "version: 1\nnetwork: [1, 2]\n",
        "spec.yaml:2:10: network: Input should be a valid dictionary or instance of Network",
    ),
    (
        "duplicate key",
        "version: 1\nnetwork:\n  icc: false\n  icc: true\n",
        "spec.yaml:4:3: icc: duplicate key (first set at line 3)",
    ),
    (
        "bad nameserver",
        "version: 1\ndns: {servers: [8.8.8.8, dns.example]}\n",
        "spec.yaml:2:26: dns.servers[1]: must be an IPv4 or IPv6 address, got 'dns.example'",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_reports_exact_message(text: str, message: str) -> None:
    assert problems(text) == [message]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        "version: 1\nroot: relative\npidfile: /a/../b\nnetwork:\n  bridge: {mtu: 1}\n"
        "  colour: blue\n"
    )
    assert [p.split(": ")[0] for p in found] == [
        "spec.yaml:2:7",
        "spec.yaml:3:10",
        "spec.yaml:5:17",
        "spec.yaml:6:3",
    ]


def test_empty_spec_means_docker_defaults() -> None:
    spec = load_text("version: 1\n")
    assert spec == Spec(version=1)
    assert str(spec.root) == "/var/lib/docker"
    assert str(spec.pidfile) == "/var/run/docker.pid"
    assert spec.network.bridge.name == "docker0"
    assert spec.network.bridge.address == "auto"
    assert [str(a) for a in spec.network.bridge.address_pools][:2] == [
        "172.17.42.1/16",
        "10.0.42.1/16",
    ]
    assert spec.network.icc and spec.network.iptables and spec.network.ip_forward
    assert [str(s) for s in spec.dns.fallback] == ["8.8.8.8", "8.8.4.4"]
    assert spec.storage.priority == ["aufs", "btrfs", "devicemapper", "overlay2", "vfs"]
    assert spec.exec.version == "1.2.0"


def test_bridge_none_disables_networking() -> None:
    assert load_text("version: 1\nnetwork: {bridge: {name: none}}\n").network.bridge.disabled
    assert not load_text("version: 1\n").network.bridge.disabled


def test_protocol_is_normalised_to_lowercase() -> None:
    spec = load_text(
        "version: 1\nnetwork:\n  published_ports: [{proto: UDP, host_port: 53, "
        "container_ip: 172.17.0.2, container_port: 53}]\n"
    )
    assert spec.network.published_ports[0]["proto"] == "udp"


def test_paths_are_normalised() -> None:
    spec = load_text("version: 1\nroot: /srv//docker/\n")
    assert str(spec.root) == "/srv/docker"


def test_a_wildcard_host_ip_clashes_with_a_specific_one() -> None:
    found = problems(
        "version: 1\nnetwork:\n  published_ports:\n"
        "    - {host_ip: 127.0.0.1, host_port: 80, container_ip: 172.17.0.2, container_port: 80}\n"
        "    - {host_port: 80, container_ip: 172.17.0.3, container_port: 80}\n"
    )
    assert found == [
        "spec.yaml:5:7: network.published_ports[1]: tcp 0.0.0.0:80 is already published by "
        "network.published_ports[0]"
    ]
    found = problems(
        "version: 1\nnetwork:\n  published_ports:\n"
        "    - {host_port: 80, container_ip: 172.17.0.3, container_port: 80}\n"
        "    - {host_ip: 127.0.0.1, host_port: 80, container_ip: 172.17.0.2, container_port: 80}\n"
    )
    assert found == [
        "spec.yaml:5:7: network.published_ports[1]: tcp 127.0.0.1:80 is already published by "
        "network.published_ports[0]"
    ]


def test_the_same_port_on_two_specific_addresses_is_fine() -> None:
    load_text(
        "version: 1\nnetwork:\n  published_ports:\n"
        "    - {host_ip: 127.0.0.1, host_port: 80, container_ip: 172.17.0.2, container_port: 80}\n"
        "    - {host_ip: 127.0.0.2, host_port: 80, container_ip: 172.17.0.3, container_port: 80}\n"
        "    - {proto: udp, host_port: 80, container_ip: 172.17.0.3, container_port: 80}\n"
    )


def test_iptables_lock_timeout_must_be_positive() -> None:
    assert problems("version: 1\nnetwork: {iptables_lock_timeout: 0}\n") == [
        "spec.yaml:2:34: network.iptables_lock_timeout: Input should be greater than 0"
    ]
