"""daemon.json and dockerd flags to a spec and back."""

from __future__ import annotations

import pytest
import yaml

from dockyard import daemon_json
from dockyard.errors import DockyardError
from dockyard.spec import load_text

DAEMON = {
    "bridge": "docker0",
    "mtu": 1450,
    "iptables": True,
    "ip-forward": True,
    "ip-masq": True,
    "icc": False,
    "ip": "127.0.0.1",
    "userland-proxy": False,
    "ipv6": True,
    "dns": ["192.0.2.53", "2001:db8::53"],
    "dns-search": ["example.test"],
    "dns-opts": ["ndots:2"],
    "data-root": "/srv/docker",
    "pidfile": "/run/dockerd.pid",
    "storage-driver": "devicemapper",
    "storage-opts": ["dm.basesize=20G"],
}


def round_trip(daemon: dict[str, object]) -> dict[str, object]:
    spec_data, _ = daemon_json.to_spec(daemon)
    spec = load_text(yaml.safe_dump(spec_data))
    mtu = spec.network.bridge.mtu
    assert isinstance(mtu, int)
    return daemon_json.export(spec, mtu, [str(s) for s in spec.dns.servers])


def test_a_daemon_json_round_trips_through_a_spec() -> None:
    assert round_trip(DAEMON) == DAEMON


def test_settings_dockyard_does_not_manage_are_notes() -> None:
    spec, notes = daemon_json.to_spec({**DAEMON, "log-driver": "journald", "graph": "/old"})
    assert spec["root"] == "/old"  # Docker 1.x's name of the data root
    assert notes == ["log-driver: not managed by dockyard; keep it in daemon.json"]


def test_bip_becomes_the_bridge_address_with_a_note() -> None:
    spec, notes = daemon_json.to_spec({"bip": "10.9.0.1/24"})
    assert spec == {"version": 1, "network": {"bridge": {"address": "10.9.0.1/24"}}}
    assert notes and notes[0].startswith("bip: dockyard gives the bridge this address")


def test_flags_are_read_as_dockerd_reads_them() -> None:
    flags = (
        "dockerd -b docker0 --mtu=1450 --iptables=false --icc=true --ip-forward --ipv6 "
        "--dns 192.0.2.53 --dns=192.0.2.54 --dns-opt ndots:2 -g /srv/docker "
        "--storage-opt size=10G --log-level debug"
    )
    assert daemon_json.parse_flags(flags) == {
        "bridge": "docker0",
        "mtu": 1450,
        "iptables": False,
        "icc": True,
        "ip-forward": True,
        "ipv6": True,
        "dns": ["192.0.2.53", "192.0.2.54"],
        "dns-opts": ["ndots:2"],
        "data-root": "/srv/docker",
        "storage-opts": ["size=10G"],
        "log-level": "debug",
    }


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("--mtu", "--from-flags: --mtu needs a value"),
        ("--mtu big", "--from-flags: mtu takes a number, got 'big'"),
        ("--iptables=maybe", "--from-flags: iptables takes true or false, got 'maybe'"),
        ("docker0", "--from-flags: 'docker0' is not a flag"),
    ],
)
def test_bad_flags_are_clear_errors(flags: str, message: str) -> None:
    with pytest.raises(DockyardError) as e:
        daemon_json.parse_flags(flags)
    assert str(e.value) == message


def test_export_of_the_defaults_attaches_dockerd_to_dockyards_bridge() -> None:
    doc = daemon_json.export(load_text("version: 1\n"), 1500, ["192.0.2.53"])
    assert doc == {
        "data-root": "/var/lib/docker",
        "pidfile": "/var/run/docker.pid",
        "bridge": "docker0",
        "mtu": 1500,
        "iptables": True,
        "ip-forward": True,
        "ip-masq": True,
        "icc": True,
        "ip": "0.0.0.0",
        "userland-proxy": True,
        "ipv6": False,
        "dns": ["192.0.2.53"],
    }
    assert "bip" not in doc  # dockerd refuses --bip together with --bridge


@pytest.mark.parametrize(
    ("ip_forward", "exported"), [("true", True), ("false", False), ("disable", False)]
)
def test_ip_forward_false_means_the_same_on_both_sides(ip_forward: str, exported: bool) -> None:
    """dockerd's --ip-forward=false leaves the setting alone, as ip_forward: false does; with
    disable dockyard turned forwarding off, and dockerd must not turn it on again."""
    spec = load_text(f"version: 1\nnetwork: {{ip_forward: {ip_forward}}}\n")
    assert daemon_json.export(spec, 1500, [])["ip-forward"] is exported
    back, notes = daemon_json.to_spec({"ip-forward": False})
    assert back == {"version": 1, "network": {"ip_forward": False}} and notes == []
    assert load_text(yaml.safe_dump(back)).network.ip_forward is False


def test_userland_proxy_is_dockerds_flag() -> None:
    assert daemon_json.parse_flags("dockerd --userland-proxy=false") == {"userland-proxy": False}
    assert daemon_json.parse_flags("--userland-proxy") == {"userland-proxy": True}
    spec, notes = daemon_json.to_spec({"userland-proxy": False})
    assert spec == {"version": 1, "network": {"userland_proxy": False}} and notes == []
    exported = daemon_json.export(load_text(yaml.safe_dump(spec)), 1500, [])
    assert exported["userland-proxy"] is False


@pytest.mark.parametrize(("flags", "ipv6"), [("--ipv6", True), ("--ipv6=false", False)])
def test_the_ipv6_flag_is_network_ipv6(flags: str, ipv6: bool) -> None:
    """dockerd's --ipv6 is network.ipv6: with it, containers keep IPv6 nameservers."""
    spec, notes = daemon_json.to_spec(daemon_json.parse_flags(flags))
    assert (spec, notes) == ({"version": 1, "network": {"ipv6": ipv6}}, [])
    assert load_text(yaml.safe_dump(spec)).network.ipv6 is ipv6
