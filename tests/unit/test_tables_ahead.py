"""Which backends' tables a run reads ahead: the one its spec names, found by a string search
before the spec is read (`tables_ahead.named_backend`), else every one installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dockyard.state import tables_ahead


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("version: 1\nnetwork:\n  iptables_backend: legacy\n", "legacy"),
        ("network:\n  iptables_backend: nft  # the host's\n", "nft"),
        ("network:\n  iptables_backend: 'legacy'\r\n", "legacy"),
        ('{"version": 1, "network": {"iptables_backend": "nft", "mtu": 1500}}', "nft"),
        ('{"network": {"iptables_backend":"legacy"}}', "legacy"),
        ("network: {iptables_backend: nft}\n", "nft"),
        ("network:\n  iptables_backend: legacy", "legacy"),
        ("network:\n  iptables_backend: auto\n", None),
        ("network:\n  iptables_backend: legacyish\n", None),
        ("network:\n  mtu: 1500\n", None),
        ("# iptables_backend: nft\nnetwork:\n  iptables_backend: legacy\n", None),
        ("", None),
    ],
)
def test_the_backend_a_spec_names_is_found_by_a_string_search(
    tmp_path: Path, text: str, named: str | None
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    assert tables_ahead.named_backend(str(spec)) == named


def test_only_a_regular_file_is_searched(tmp_path: Path) -> None:
    """A pipe given as the spec is not read here (its writer's data is the loader's)."""
    fifo = tmp_path / "spec"
    os.mkfifo(fifo)
    assert tables_ahead.named_backend(str(fifo)) is None
    assert tables_ahead.named_backend(str(tmp_path / "missing.yaml")) is None
    assert tables_ahead.named_backend(str(tmp_path)) is None
    huge = tmp_path / "huge.yaml"  # past what the loader accepts: not read here either
    huge.write_text("network:\n  iptables_backend: legacy\n")
    with huge.open("r+b") as f:
        f.truncate((64 << 20) + 1)
    assert tables_ahead.named_backend(str(huge)) is None


@pytest.mark.parametrize(
    ("text", "read"), [("iptables_backend: legacy\n", ["legacy"]), ("mtu: 1\n", ["legacy", "nft"])]
)
def test_a_run_reads_ahead_the_backend_its_spec_names(
    tmp_path: Path, monkeypatch: Any, text: str, read: list[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    started: list[str] = []
    real = subprocess.Popen

    def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(argv[0])
        return real(["true"], **kwargs)

    monkeypatch.setattr(tables_ahead, "available", lambda backend: True)
    monkeypatch.setattr(tables_ahead, "might_load_module", lambda name: False)
    monkeypatch.setattr(tables_ahead, "token_or_unknown", lambda backend: None)
    monkeypatch.setattr(subprocess, "Popen", popen)
    with tables_ahead.reading_ahead(str(spec)):
        assert started == [f"iptables-{backend}-save" for backend in read]
