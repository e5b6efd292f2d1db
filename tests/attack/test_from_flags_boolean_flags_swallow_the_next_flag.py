"""`reconcile import daemon-json --from-flags` knows only the boolean flags of the settings
dockyard manages. Every other flag is taken to need a value, so dockerd's own switches
(`-D`/`--debug`, `--live-restore`, `--ip6tables`, `--experimental`, ...) swallow the word after
them: `--from-flags "-D -b docker0"` fails with "'docker0' is not a flag", and
`--debug --mtu 1450` loses the MTU into a `debug: "--mtu"` note.

dockerd 20.10's `dockerd --help` lists these as switches (no value): --cri-containerd, -D/--debug,
--experimental, --icc, --init, --ip-forward, --ip-masq, --ip6tables, --iptables, --ipv6,
--live-restore, --no-new-privileges, --raw-logs, --rootless, --selinux-enabled, --tls,
--tlsverify, --userland-proxy. Its short flags -D, -H, -G, -l stand for the daemon.json keys
debug, hosts, group, log-level.
"""

from __future__ import annotations

import pytest

from dockyard import daemon_json

SWITCHES = [
    ("-D", "debug"),
    ("--debug", "debug"),
    ("--live-restore", "live-restore"),
    ("--ip6tables", "ip6tables"),
    ("--experimental", "experimental"),
    ("--no-new-privileges", "no-new-privileges"),
    ("--init", "init"),
    ("--tlsverify", "tlsverify"),
]


@pytest.mark.parametrize(("flag", "key"), SWITCHES)
def test_a_switch_takes_no_value(flag: str, key: str) -> None:
    assert daemon_json.parse_flags(f"dockerd {flag} -b docker0 --mtu 1450") == {
        key: True,
        "bridge": "docker0",
        "mtu": 1450,
    }


def test_a_switch_may_be_given_false() -> None:
    assert daemon_json.parse_flags("--live-restore=false --debug=false") == {
        "live-restore": False,
        "debug": False,
    }


def test_short_flags_are_noted_under_their_daemon_json_key() -> None:
    daemon = daemon_json.parse_flags("-H unix:///run/d.sock -G docker -l debug -b docker0")
    assert daemon == {
        "hosts": ["unix:///run/d.sock"],
        "group": "docker",
        "log-level": "debug",
        "bridge": "docker0",
    }
    _, notes = daemon_json.to_spec(daemon)
    assert notes == [
        f"{key}: not managed by dockyard; keep it in daemon.json"
        for key in ("hosts", "group", "log-level")
    ]
