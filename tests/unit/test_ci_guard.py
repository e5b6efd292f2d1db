"""The guard in tests/conftest.py: in CI, integration tests that cannot run here (no root, no
`ip`) fail the run and say why, never skip quietly; in one process (`TEST_WORKERS=0`) and in
the two pytest-xdist workers `make test` starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
A_ROOT_TEST = "tests/integration/test_bridge.py::test_from_nothing"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_in_ci_without_ip_the_run_fails_saying_why(workers: str, tmp_path: Path) -> None:
    nothing = tmp_path / "bin"  # a PATH where `ip` is not found
    nothing.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env |= {"CI": "true", "PATH": str(nothing)}
    pytest_args = ["-q", "-p", "no:cacheprovider", "-n", workers, "--dist", "loadfile"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args, A_ROOT_TEST],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode not in (0, 5), out
    assert "integration tests cannot run in CI: needs iproute2 (ip)" in out, out
    assert "INTERNALERROR" not in out, out
