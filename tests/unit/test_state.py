"""The ledger, the lock and atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockyard.errors import LockTimeout
from dockyard.lock import exclusive
from dockyard.state.ledger import Ledger
from dockyard.state.safepath import Tree, Unsafe


def load(directory: Path) -> Ledger:
    return Ledger.load(Tree(directory), "ledger.json")


def test_ledger_round_trip(tmp_path: Path) -> None:
    ledger = load(tmp_path)
    ledger.claim("bridge", "docker0", {"address": "172.17.42.1/16"})
    ledger.save()
    again = load(tmp_path)
    assert again.owns("bridge", "docker0")
    assert again.facts("bridge", "docker0") == {"address": "172.17.42.1/16"}
    again.release("bridge", "docker0")
    again.save()
    assert not load(tmp_path).owns("bridge", "docker0")
    assert oct((tmp_path / "ledger.json").stat().st_mode & 0o777) == "0o600"


def test_damaged_ledger_reads_empty_says_so_and_is_moved_aside_when_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "ledger.json").write_text('{"owned": ')
    (tmp_path / "ledger.json.corrupt-1").write_text("an older one")
    ledger = load(tmp_path)
    assert ledger.owned == {}
    assert ledger.notice() == (
        f"dockyard's ledger {tmp_path}/ledger.json is damaged (is not a ledger dockyard can "
        f"read): it is moved aside to {tmp_path}/ledger.json.corrupt-2 when dockyard next "
        "writes it, and dockyard owns only what it creates anew"
    )
    assert (tmp_path / "ledger.json").read_text() == '{"owned": '  # reading changes nothing
    ledger.claim("bridge", "docker0")
    ledger.save()
    assert (tmp_path / "ledger.json.corrupt-2").read_text() == '{"owned": '
    assert (tmp_path / "ledger.json.corrupt-1").read_text() == "an older one"
    assert load(tmp_path).owns("bridge", "docker0")


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "hardlink", "huge", "list"])
def test_a_ledger_that_is_not_a_small_regular_json_file_is_never_followed_or_read_whole(
    tmp_path: Path, kind: str
) -> None:
    state, decoy = tmp_path / "state", tmp_path / "decoy"
    state.mkdir()
    decoy.write_text('{"format_version": 1, "owned": {"bridge": {"docker0": true}}}')
    ledger_path = state / "ledger.json"
    if kind == "symlink":
        ledger_path.symlink_to(decoy)
    elif kind == "fifo":
        os.mkfifo(ledger_path)
    elif kind == "directory":
        ledger_path.mkdir()
    elif kind == "hardlink":
        os.link(decoy, ledger_path)
    elif kind == "huge":
        with ledger_path.open("wb") as f:
            f.truncate(65 << 20)
    else:
        ledger_path.write_text('{"format_version": 1, "owned": {"bridge": []}}')
    ledger = load(state)
    assert ledger.owned == {} and ledger.damage is not None
    ledger.claim("bridge", "docker1")
    ledger.save()
    assert decoy.read_text() == '{"format_version": 1, "owned": {"bridge": {"docker0": true}}}'
    assert (state / "ledger.json.corrupt-1").exists() or (
        (state / "ledger.json.corrupt-1").is_symlink()
    )
    assert load(state).owned == {"bridge": {"docker1": True}}


def test_unchanged_ledger_is_not_rewritten(tmp_path: Path) -> None:
    ledger = load(tmp_path)
    ledger.save()
    assert not (tmp_path / "ledger.json").exists()


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
    ledger = load(tmp_path)
    ledger.claim("directories", "/x")
    ledger.save()
    assert json.loads((tmp_path / "ledger.json").read_text())["format_version"] == 1


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_the_lock_is_never_a_symlink_or_a_fifo(tmp_path: Path, kind: str) -> None:
    decoy = tmp_path / "decoy"
    decoy.write_text("precious")
    lock = tmp_path / "lock"
    if kind == "symlink":
        lock.symlink_to(decoy)
    else:
        os.mkfifo(lock)
    with pytest.raises(Unsafe) as e, exclusive(lock, 0):
        pass
    found = f"a symlink (to {decoy})" if kind == "symlink" else "a fifo"
    assert str(e.value) == (
        f"{lock} is {found} where a regular file belongs; dockyard leaves it alone, "
        "never follows it"
    )
    assert decoy.read_text() == "precious"


def test_a_watch_holding_the_lock_is_said_at_once(tmp_path: Path) -> None:
    """A watch never lets go: waiting --lock-timeout for it only delays the same failure."""
    lock = tmp_path / "lock"
    code = (
        "import os, time\nfrom pathlib import Path\nfrom dockyard.lock import exclusive\n"
        f"with exclusive(Path({str(lock)!r}), 0):\n"
        f"    Path({str(tmp_path / 'dockyard.pid')!r}).write_text(f'{{os.getpid()}}\\n')\n"
        "    print('held', flush=True)\n    time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        started = time.monotonic()
        with pytest.raises(LockTimeout) as e, exclusive(lock, 30, wait_for_watch=False):
            pass
        assert time.monotonic() - started < 5
        assert str(e.value) == (
            f"{lock} is held by a watch (pid {holder.pid}), which never lets go; stop it first "
            "(or --wait to wait anyway)"
        )
        with pytest.raises(LockTimeout) as e, exclusive(lock, 0.1, hint=""):
            pass
        assert str(e.value).endswith("gave up after 0.1s")  # no flag the command lacks
    finally:
        holder.kill()
        holder.wait()


def test_waiting_for_the_xtables_lock_is_said_after_a_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dockyard.reconcilers.iptables.backends import XtablesLockTimeout, xtables_lock

    lock = tmp_path / "xtables.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"])
    try:
        while not lock.exists():
            time.sleep(0.02)
        time.sleep(0.2)
        with pytest.raises(XtablesLockTimeout), xtables_lock(lock, 1.3):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert (
        capsys.readouterr().err
        == f"waiting for the xtables lock (held by pid {holder.pid} (flock))\n"
    )
