"""The cycle collector: off for a one-off `reconcile` run, which ends at once; on for a watch,
which runs for good."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard import watch
from dockyard.errors import DockyardError

ONE_RUN = """
import gc, os, sys
sys.argv = ["reconcile", "--version"]
from dockyard.process import run
try:
    run()
except SystemExit:
    pass
print(gc.isenabled(), flush=True)
os._exit(0)
"""


def test_a_one_off_run_does_not_collect_cycles() -> None:
    result = subprocess.run([sys.executable, "-c", ONE_RUN], capture_output=True, text=True)
    assert result.stdout.splitlines()[-1] == "False", result.stdout + result.stderr


def test_a_watch_collects_cycles(tmp_path: Path) -> None:
    gc.disable()
    try:
        options = watch.Options(spec_path=str(tmp_path / "missing.yaml"), interval=30.0)
        with pytest.raises(DockyardError):
            watch.main(options)
        assert gc.isenabled()
    finally:
        gc.enable()
