"""Without privileges dockyard explains itself and changes nothing; it never shows a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def public_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)
        yield Path(tmp)


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    argv = [*AS_NOBODY, sys.executable, "-m", "dockyard", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env)


def test_apply_without_root_changes_nothing(public_dir: Path) -> None:
    spec = public_dir / "s.yaml"
    spec.write_text(f"version: 1\nroot: {public_dir}/docker\nstate_dir: {public_dir}/state\n")
    result = as_nobody("apply", str(spec))
    assert result.returncode == 1
    assert result.stderr == (
        "Error: nothing was changed: preflight: must run as root (effective uid is 65534); "
        "run it with sudo, or set preflight.require_root: false\n"
    )
    assert sorted(p.name for p in public_dir.iterdir()) == ["s.yaml"]


def test_plan_without_root_shows_the_failed_check(public_dir: Path) -> None:
    spec = public_dir / "s.yaml"
    spec.write_text(f"version: 1\nroot: {public_dir}/docker\nstate_dir: {public_dir}/state\n")
    result = as_nobody("plan", str(spec))
    assert result.returncode == 1
    assert "  Error: must run as root (effective uid is 65534)" in result.stdout
    assert (
        f"  + directory {public_dir}/docker  (does not exist)\n      mode:  0700\n      owner: 0:0"
        in result.stdout
    )
    assert "Traceback" not in result.stderr


def test_unreadable_state_is_a_note_not_a_traceback(public_dir: Path) -> None:
    private = public_dir / "private"
    private.mkdir(mode=0o700)
    spec = public_dir / "s.yaml"
    spec.write_text(
        f"version: 1\nroot: {private}/docker\nstate_dir: {public_dir}/state\n"
        "preflight: {require_root: false}\nnetwork: {bridge: {name: none}}\n"
    )
    result = as_nobody("apply", str(spec))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert not (private / "docker").exists()
    assert "permission denied" in result.stderr
