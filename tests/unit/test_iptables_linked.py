"""Which backend the plain `iptables` runs: its multi-call binary, else `iptables --version`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.reconcilers.iptables import backends

# A stand-in that records being run, and claims the backend named by VERSION.
SCRIPT = """#!/bin/sh
echo ran >> "{log}"
echo "iptables v1.8.9 ({version})"
"""


def bin_dir(tmp_path: Path, target: str, version: str) -> tuple[Path, Path]:
    (tmp_path / "bin").mkdir()
    log = tmp_path / "ran.log"
    real = tmp_path / "bin" / target
    real.write_text(SCRIPT.format(log=log, version=version))
    real.chmod(0o755)
    # as Debian's alternatives do: iptables -> iptables-nft -> the multi-call binary
    (tmp_path / "bin" / "iptables-x").symlink_to(real)
    (tmp_path / "bin" / "iptables").symlink_to(tmp_path / "bin" / "iptables-x")
    return tmp_path / "bin", log


@pytest.mark.parametrize(
    ("target", "wanted"), [("xtables-nft-multi", "nft"), ("xtables-legacy-multi", "legacy")]
)
def test_the_multi_call_binary_names_the_backend_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, wanted: str
) -> None:
    path, log = bin_dir(tmp_path, target, "something else")
    monkeypatch.setenv("PATH", str(path))
    assert backends.linked_backend() == wanted
    assert not log.exists()


@pytest.mark.parametrize(
    ("version", "wanted"), [("nf_tables", "nft"), ("legacy", "legacy"), ("who knows", None)]
)
def test_any_other_binary_is_asked_for_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, wanted: str | None
) -> None:
    path, log = bin_dir(tmp_path, "iptables-custom", version)
    monkeypatch.setenv("PATH", str(path))
    assert backends.linked_backend() == wanted
    assert log.read_text() == "ran\n"


def test_no_iptables_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert backends.linked_backend() is None
