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
        "spec.yaml:2:26: network.bridge.name: must be a Linux interface name: 1 to 15 bytes, "
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
        "spec.yaml:2:19: preflight.arch: must list at least 1 value, got 0",
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
        "spec.yaml:3:29: network.published_ports[0].proto: must be tcp or udp, got 'sctp'",
    ),
    (
        "storage driver listed twice",
        "version: 1\nstorage: {priority: [vfs, overlay2, vfs]}\n",
        "spec.yaml:2:37: storage.priority[2]: vfs is listed twice",
    ),
    (
        "unknown storage driver",
        "version: 1\nstorage: {driver: zfs}\n",
        "spec.yaml:2:19: storage.driver: must be auto, aufs, btrfs, devicemapper, overlay2, "
        "overlay or vfs, got 'zfs'",
    ),
    (
        "wrong type",
        "version: 1\nnetwork: {iptables: maybe}\n",
        "spec.yaml:2:21: network.iptables: must be true or false, got 'maybe'",
    ),
    (
        "a section that is not a mapping",
        "version: 1\nnetwork: [1, 2]\n",
        "spec.yaml:2:10: network: must be a mapping of keys, such as `key: value`, got a list",
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
    # Tokens, not text: each of these used to validate and then write extra lines into
    # resolv.conf, or fail at apply.
    (
        "newline in a search domain",
        'version: 1\ndns: {search: ["a.example\\nnameserver 192.0.2.9"]}\n',
        "spec.yaml:2:16: dns.search[0]: must be a domain name such as example.com (letters, "
        "digits and '-', dot-separated); it holds control character U+000A: "
        "'a.example\\nnameserver 192.0.2.9'",
    ),
    (
        "search domain with a space",
        "version: 1\ndns: {search: [a b.example]}\n",
        "spec.yaml:2:16: dns.search[0]: must be a domain name such as example.com (letters, "
        "digits and '-', dot-separated), got 'a b.example'",
    ),
    (
        "search label starting with a hyphen",
        "version: 1\ndns: {search: [-a.example]}\n",
        "spec.yaml:2:16: dns.search[0]: must be a domain name such as example.com (letters, "
        "digits and '-', dot-separated), got '-a.example'",
    ),
    (
        "seven search domains",
        "version: 1\ndns: {search: [a.x, b.x, c.x, d.x, e.x, f.x, g.x]}\n",
        "spec.yaml:2:15: dns.search: lists 7 domains; resolv.conf takes at most 6",
    ),
    (
        "search list over 256 characters",
        f"version: 1\ndns: {{search: [{'a' * 60}.x, {'b' * 60}.x, {'c' * 60}.x, {'d' * 60}.x, "
        f"{'e' * 60}.x]}}\n",
        "spec.yaml:2:15: dns.search: is 314 characters long; resolv.conf takes at most 256",
    ),
    (
        "newline in a resolver option",
        'version: 1\ndns: {options: ["ndots:1\\nnameserver 192.0.2.9"]}\n',
        "spec.yaml:2:17: dns.options[0]: must be an option of resolv.conf(5) such as ndots:2, "
        "timeout:5, attempts:2, rotate or edns0; it holds control character U+000A: "
        "'ndots:1\\nnameserver 192.0.2.9'",
    ),
    (
        "unknown resolver option",
        "version: 1\ndns: {options: [rotat]}\n",
        "spec.yaml:2:17: dns.options[0]: must be an option of resolv.conf(5) such as ndots:2, "
        "timeout:5, attempts:2, rotate or edns0, got 'rotat' (did you mean rotate?)",
    ),
    (
        "resolver option out of range",
        "version: 1\ndns: {options: ['ndots:99']}\n",
        "spec.yaml:2:17: dns.options[0]: must be ndots:N with N from 0 to 15, got 'ndots:99'",
    ),
    (
        "zone of a nameserver that is not an interface name",
        'version: 1\ndns: {servers: ["fe80::1%a b"]}\n',
        "spec.yaml:2:17: dns.servers[0]: must be an IPv4 or IPv6 address; its zone must be an "
        "interface name, got 'fe80::1%a b'",
    ),
    (
        "MAC with a trailing newline",
        'version: 1\nnetwork: {bridge: {mac: "02:42:ac:11:00:01\\n"}}\n',
        "spec.yaml:2:25: network.bridge.mac: must be a MAC address such as 02:42:ac:11:00:01; "
        "it holds control character U+000A: '02:42:ac:11:00:01\\n'",
    ),
    (
        "bridge name with a trailing newline",
        'version: 1\nnetwork: {bridge: {name: "br0\\n"}}\n',
        "spec.yaml:2:26: network.bridge.name: must be a Linux interface name: 1 to 15 bytes, "
        "no spaces, '/' or ':'; it holds control character U+000A: 'br0\\n'",
    ),
    (
        "bridge name with a space",
        "version: 1\nnetwork: {bridge: {name: 'br 0'}}\n",
        "spec.yaml:2:26: network.bridge.name: must be a Linux interface name: 1 to 15 bytes, "
        "no spaces, '/' or ':', got 'br 0'",
    ),
    (
        "bridge name with a slash",
        "version: 1\nnetwork: {bridge: {name: br/0}}\n",
        "spec.yaml:2:26: network.bridge.name: must be a Linux interface name: 1 to 15 bytes, "
        "no spaces, '/' or ':', got 'br/0'",
    ),
    (
        "bridge name of 16 bytes in 8 characters",
        "version: 1\nnetwork: {bridge: {name: ääääääää}}\n",
        "spec.yaml:2:26: network.bridge.name: must be a Linux interface name: 1 to 15 bytes, "
        "no spaces, '/' or ':', got 'ääääääää'",
    ),
    (
        "newline in a path",
        'version: 1\nroot: "/srv/docker\\n"\n',
        "spec.yaml:2:7: root: must be an absolute path such as /var/lib/docker; it holds "
        "control character U+000A: '/srv/docker\\n'",
    ),
    (
        "NUL in a path",
        'version: 1\nexec: {init_path: "/usr/lib/docker/dockerinit\\0"}\n',
        "spec.yaml:2:19: exec.init_path: must be an absolute path such as /var/lib/docker; it "
        "holds control character U+0000: '/usr/lib/docker/dockerinit\\x00'",
    ),
    (
        "a path name over 255 bytes",
        f"version: 1\nroot: /{'a' * 256}\n",
        "spec.yaml:2:7: root: must be a path of at most 4095 bytes, each name at most 255, got "
        f"'/{'a' * 59}'... (257 characters)",
    ),
    (
        "search '.' beside a domain",
        "version: 1\ndns: {search: ['.', corp.example]}\n",
        "spec.yaml:2:15: dns.search: '.' means no search domain at all (Docker's "
        "--dns-search=.) and must be the only entry",
    ),
    (
        "an IPv4 address as an IPv6 fallback",
        "version: 1\ndns: {fallback_ipv6: [8.8.8.8]}\n",
        "spec.yaml:2:23: dns.fallback_ipv6[0]: must be an IPv6 address such as "
        "2001:4860:4860::8888, got '8.8.8.8'",
    ),
    (
        "storage option with a space",
        "version: 1\nstorage: {options: ['dm.basesize=20G x']}\n",
        "spec.yaml:2:21: storage.options[0]: must be a storage option key=value such as "
        "dm.basesize=20G, with no spaces, got 'dm.basesize=20G x'",
    ),
    (
        "storage option no driver of Docker 1.6 knows",
        "version: 1\nstorage: {options: [dm.thinpool=pool]}\n",
        "spec.yaml:2:21: storage.options[0]: Unknown option dm.thinpool (did you mean "
        "dm.thinpooldev?): of Docker 1.6's drivers only devicemapper takes options, and it knows "
        "dm.basesize, dm.loopdatasize, dm.loopmetadatasize, dm.fs, dm.mkfsarg, dm.mountopt, "
        "dm.datadev, dm.metadatadev, dm.thinpooldev, dm.blkdiscard, dm.blocksize",
    ),
    (
        "storage option of a later Docker",
        "version: 1\nstorage: {options: [overlay2.size=10G]}\n",
        "spec.yaml:2:21: storage.options[0]: Unknown option overlay2.size: of Docker 1.6's "
        "drivers only devicemapper takes options, and it knows dm.basesize, dm.loopdatasize, "
        "dm.loopmetadatasize, dm.fs, dm.mkfsarg, dm.mountopt, dm.datadev, dm.metadatadev, "
        "dm.thinpooldev, dm.blkdiscard, dm.blocksize",
    ),
    (
        "storage size Docker's units cannot read",
        "version: 1\nstorage: {options: [dm.basesize=20GiB]}\n",
        "spec.yaml:2:21: storage.options[0]: dm.basesize=20GiB: invalid size: '20GiB'",
    ),
    (
        "storage size past int64",
        "version: 1\nstorage: {options: [dm.loopdatasize=9000000P]}\n",
        "spec.yaml:2:21: storage.options[0]: dm.loopdatasize=9000000P: invalid size: "
        "'9000000P' is more than Go's int64 holds",
    ),
    (
        "devicemapper filesystem it cannot make",
        "version: 1\nstorage: {options: [dm.fs=btrfs]}\n",
        "spec.yaml:2:21: storage.options[0]: dm.fs=btrfs: Unsupported filesystem btrfs "
        "(ext4 or xfs)",
    ),
    (
        "blkdiscard that is no Go boolean",
        "version: 1\nstorage: {options: [dm.blkdiscard=yes]}\n",
        "spec.yaml:2:21: storage.options[0]: dm.blkdiscard=yes: strconv.ParseBool: parsing "
        '"yes": invalid syntax (true or false)',
    ),
    (
        "devicemapper option given twice",
        "version: 1\nstorage: {options: [dm.basesize=10G, dm.basesize=20G]}\n",
        "spec.yaml:2:38: storage.options[1]: dm.basesize is given twice, in storage.options[0] "
        "too; Docker used the last one and ignored the other",
    ),
    (
        "exec version that climbs out of init/",
        "version: 1\nexec: {version: ../x}\n",
        "spec.yaml:2:17: exec.version: must be a version such as 1.2.0: letters, digits, '.', "
        "'_', '+' or '-', at most 64, got '../x'",
    ),
    (
        "kernel version with a trailing newline",
        'version: 1\npreflight: {min_kernel: "3.8\\n"}\n',
        'spec.yaml:2:25: preflight.min_kernel: must be a kernel version such as "3.8" or '
        "\"4.19.0\", got '3.8\\n'",
    ),
    (
        "a list where an architecture goes",
        "version: 1\npreflight: {arch: [[amd64]]}\n",
        "spec.yaml:2:20: preflight.arch[0]: must be one of amd64, 386, arm, arm64, ppc64le, "
        "s390x, riscv64, got a list",
    ),
    (
        "a number where the bind address goes",
        "version: 1\nnetwork: {default_bind_ip: 0}\n",
        "spec.yaml:2:28: network.default_bind_ip: must be an IPv4 address such as 0.0.0.0, got 0",
    ),
    (
        "lock timeout that is not a number",
        "version: 1\nnetwork: {iptables_lock_timeout: .nan}\n",
        "spec.yaml:2:34: network.iptables_lock_timeout: must be a number of seconds above 0 and "
        "at most 3600, got .nan",
    ),
    (
        "infinite lock timeout",
        "version: 1\nnetwork: {iptables_lock_timeout: .inf}\n",
        "spec.yaml:2:34: network.iptables_lock_timeout: must be a number of seconds above 0 and "
        "at most 3600, got .inf",
    ),
    (
        "a key that is not a name",
        "version: 1\nnetwork: {1: x}\n",
        "spec.yaml:2:11: network: a key must be a name, got 1",
    ),
    (
        "an unknown key with an escape sequence in it",
        'version: 1\n"\\e[31m": 1\n',
        "spec.yaml:2:1: '\\x1b[31m': unknown field; expected one of: version, root, pidfile, "
        "state_dir, selinux, preflight, network, dns, storage, exec",
    ),
    (
        "version 1.0",
        "version: 1.0\n",
        "spec.yaml:1:10: version: this dockyard reads spec version 1 only, got 1.0",
    ),
    # The pid file (issue 11): a stale one is deleted, so it must be nobody else's file.
    (
        "pidfile inside root",
        "version: 1\nroot: /srv/docker\npidfile: /srv/docker/docker.pid\n",
        "spec.yaml:3:10: pidfile: must be outside root (/srv/docker): a stale pid file is "
        "deleted, and what is under root is Docker's data",
    ),
    (
        "pidfile that is root",
        "version: 1\npidfile: /var/lib/docker\n",
        "spec.yaml:2:10: pidfile: must be outside root (/var/lib/docker): a stale pid file is "
        "deleted, and what is under root is Docker's data",
    ),
    (
        "pidfile inside state_dir",
        "version: 1\npidfile: /var/lib/dockyard/ledger.json\n",
        "spec.yaml:2:10: pidfile: must be outside state_dir (/var/lib/dockyard): a stale pid "
        "file is deleted, and what is under state_dir is dockyard's own state",
    ),
    (
        "pidfile that is the host's resolv.conf",
        "version: 1\npidfile: /etc/resolv.conf\n",
        "spec.yaml:2:10: pidfile: is the file dns.host_resolv_conf names; a stale pid file is "
        "deleted, so it must be a file of its own",
    ),
    (
        "pidfile that is systemd-resolved's resolv.conf",
        "version: 1\npidfile: /run/systemd/resolve/resolv.conf\n",
        "spec.yaml:2:10: pidfile: is the file dns.resolved_conf names; a stale pid file is "
        "deleted, so it must be a file of its own",
    ),
    (
        "pidfile that is the dockerinit to install",
        "version: 1\npidfile: /usr/lib/docker/dockerinit\nexec: {init_path: "
        "/usr/lib/docker/dockerinit}\n",
        "spec.yaml:2:10: pidfile: is the file exec.init_path names; a stale pid file is "
        "deleted, so it must be a file of its own",
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
    assert spec.storage.priority == ["aufs", "btrfs", "devicemapper", "overlay", "vfs"]
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
        "spec.yaml:2:34: network.iptables_lock_timeout: must be a number of seconds above 0 and "
        "at most 3600, got 0"
    ]


def test_rules_between_fields_run_when_other_fields_are_invalid() -> None:
    """All errors at once, in file order: the type errors, and the rules between fields
    checked on the fields that are valid."""
    found = problems(
        "version: 1\nnetwork:\n  bridge: {mtu: 1}\nstate_dir: /srv/docker/dockyard\n"
        "root: /srv/docker\nexec: {driver: bsd}\n"
    )
    assert found == [
        "spec.yaml:3:17: network.bridge.mtu: must be auto or a number from 68 to 65535, got 1",
        "spec.yaml:4:12: state_dir: must be outside root: dockyard's ledger is not Docker's data",
        "spec.yaml:6:16: exec.driver: must be native or lxc, got 'bsd'",
    ]


def test_a_rule_on_an_invalid_field_says_nothing() -> None:
    """root is invalid: its default (/var/lib/docker) must not make state_dir look wrong."""
    assert problems("version: 1\nroot: docker\nstate_dir: /var/lib/docker/x\n") == [
        "spec.yaml:2:7: root: must be an absolute path (start with /), got 'docker'"
    ]


def test_ports_are_checked_without_the_invalid_ones_and_named_by_their_place() -> None:
    found = problems(
        "version: 1\nnetwork:\n  published_ports:\n"
        "    - {host_port: x, container_ip: 172.17.0.2, container_port: 80}\n"
        "    - {host_port: 80, container_ip: 172.17.0.2, container_port: 80}\n"
        "    - {host_port: 81, container_ip: 300.0.0.1, container_port: 80}\n"
        "    - {host_port: 80, container_ip: 172.17.0.3, container_port: 80}\n"
    )
    assert found == [
        "spec.yaml:4:19: network.published_ports[0].host_port: must be a whole number, got 'x'",
        "spec.yaml:6:37: network.published_ports[2].container_ip: must be an IPv4 address such "
        "as 172.17.0.2, got '300.0.0.1'",
        "spec.yaml:7:7: network.published_ports[3]: tcp 0.0.0.0:80 is already published by "
        "network.published_ports[1]",
    ]


def test_no_message_is_pydantic_s() -> None:
    found = problems(
        "version: 1\nselinux: 3\nnetwork: {bridge: [], published_ports: {a: 1}, "
        "iptables_backend: 5}\npreflight: {arch: amd64, os: [linux]}\n"
    )
    assert found == [
        "spec.yaml:2:10: selinux: must be true or false, got 3",
        "spec.yaml:3:19: network.bridge: must be a mapping of keys, such as `key: value`, got "
        "a list",
        "spec.yaml:3:40: network.published_ports: must be a list, such as [a, b], got a mapping",
        "spec.yaml:3:66: network.iptables_backend: must be auto, legacy or nft, got 5",
        "spec.yaml:4:19: preflight.arch: must be a list, such as [a, b], got 'amd64'",
        "spec.yaml:4:30: preflight.os: must be linux, got a list",
    ]


def test_all_within_takes_the_subnets_bounds_exactly() -> None:
    import ipaddress

    from dockyard.spec.rules import all_within

    subnet = ipaddress.IPv4Network("172.17.0.0/16")
    assert all_within([], subnet)
    assert all_within(["172.17.0.0", "172.17.255.255", "172.17.3.4"], subnet)
    assert not all_within(["172.17.0.2", "172.16.255.255"], subnet)
    assert not all_within(["172.18.0.0", "172.17.0.2"], subnet)
    assert all_within(["255.255.255.255"], ipaddress.IPv4Network("255.255.255.0/24"))
    assert not all_within(["0.0.0.0"], ipaddress.IPv4Network("0.0.0.1/32"))
