"""`reconcile import daemon-json` is to write "the equivalent spec", yet it copies each value
across unchecked and exits 0: a daemon.json with `"mtu": 0`, `"dns": "192.0.2.53"` (a string
where dockerd wants a list) or `"data-root": "docker"` becomes a spec that `reconcile validate`
then refuses, and `reconcile import ... > spec.yaml && reconcile spec.yaml` fails at the second
step, far from the setting that caused it. The import must refuse such input itself, naming the
daemon.json setting and what the spec requires, with no spec on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.cli import main


@pytest.mark.parametrize(
    ("daemon", "problem"),
    [
        (
            {"bridge": "docker0", "mtu": 0},
            "mtu (network.bridge.mtu): must be auto or a number from 68 to 65535, got 0",
        ),
        (
            {"dns": "192.0.2.53"},
            "dns (dns.servers): must be a list, such as [a, b], got '192.0.2.53'",
        ),
        (
            {"data-root": "docker"},
            "data-root (root): must be an absolute path (start with /), got 'docker'",
        ),
    ],
)
def test_a_setting_the_spec_refuses_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], daemon: dict[str, object], problem: str
) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(daemon))
    assert main(["import", "daemon-json", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{path}: {problem}\n", err


def test_flags_the_spec_refuses_are_an_error_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "daemon-json", "--from-flags", "--ip 300.1.2.3"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("--from-flags: ip (network.default_bind_ip): "), err


def test_a_valid_import_still_prints_its_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"bridge": "docker0", "mtu": 1450, "debug": True}))
    assert main(["import", "daemon-json", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == "version: 1\nnetwork:\n  bridge:\n    name: docker0\n    mtu: 1450\n"
    assert err == "Note: debug: not managed by dockyard; keep it in daemon.json\n"
