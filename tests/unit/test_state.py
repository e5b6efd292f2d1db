"""The ledger, the lock and atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.errors import DockyardError, LockTimeout
from dockyard.fsutil import atomic_write
from dockyard.lock import exclusive
from dockyard.state.ledger import Ledger


def test_ledger_round_trip(tmp_path: Path) -> None:
    ledger = Ledger.load(tmp_path / "ledger.json")
    ledger.claim("bridge", "docker0", {"address": "172.17.42.1/16"})
    ledger.save()
    again = Ledger.load(tmp_path / "ledger.json")
    assert again.owns("bridge", "docker0")
    assert again.facts("bridge", "docker0") == {"address": "172.17.42.1/16"}
    again.release("bridge", "docker0")
    again.save()
    assert not Ledger.load(tmp_path / "ledger.json").owns("bridge", "docker0")
    assert oct((tmp_path / "ledger.json").stat().st_mode & 0o777) == "0o600"


def test_damaged_ledger_is_an_error_not_a_silent_reset(tmp_path: Path) -> None:
    (tmp_path / "ledger.json").write_text('{"owned": ')
    with pytest.raises(DockyardError, match="ledger is damaged"):
        Ledger.load(tmp_path / "ledger.json")
    assert (tmp_path / "ledger.json").read_text() == '{"owned": '


def test_unchanged_ledger_is_not_rewritten(tmp_path: Path) -> None:
    ledger = Ledger.load(tmp_path / "ledger.json")
    ledger.save()
    assert not (tmp_path / "ledger.json").exists()


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    atomic_write(target, b"new", 0o600)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_atomic_write_failure_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes", 0o600)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_lock_names_its_holder_and_times_out(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    code = (
        "import time\nfrom pathlib import Path\nfrom dockyard.lock import exclusive\n"
        f"with exclusive(Path({str(lock)!r}), 0):\n"
        "    print('held', flush=True)\n    time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(LockTimeout) as e, exclusive(lock, 0.2):
            pass
        assert str(e.value) == (
            f"{lock} is held by pid {holder.pid} (another reconcile); gave up after 0.2s "
            "(see --lock-timeout)"
        )
    finally:
        holder.kill()
        holder.wait()
    with exclusive(lock, 0):
        assert lock.read_text() == f"{os.getpid()}\n"
    assert lock.read_text() == ""


def test_json_of_ledger_is_versioned(tmp_path: Path) -> None:
    ledger = Ledger.load(tmp_path / "ledger.json")
    ledger.claim("directories", "/x")
    ledger.save()
    assert json.loads((tmp_path / "ledger.json").read_text())["format_version"] == 1
