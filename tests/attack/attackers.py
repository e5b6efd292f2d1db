"""Helpers for the attack tests: an attacker that runs beside dockyard, in its own process, and
reacts to what dockyard creates in a directory (inotify), as a hostile user of the Docker root
would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.state import safepath

# Swaps every temporary file dockyard creates in DIR (".<name>.<pid>.<n>.tmp") for a hard link
# to VICTIM, by an atomic rename, the moment inotify reports it.
HARDLINK_SWAPPER = r"""
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
root, victim = sys.argv[1], sys.argv[2]
dfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
fd = libc.inotify_init()
libc.inotify_add_watch(fd, root.encode(), 0x100)  # IN_CREATE
os.link(victim, ".stage", dst_dir_fd=dfd)
print("ready", flush=True)
while True:
    buf = os.read(fd, 65536)
    i = 0
    while i < len(buf):
        _, _, _, n = struct.unpack_from("iIII", buf, i)
        name = buf[i + 16 : i + 16 + n].rstrip(b"\0").decode()
        i += 16 + n
        if name.startswith(".") and name.endswith(".tmp") and name != ".stage":
            try:
                os.rename(".stage", name, src_dir_fd=dfd, dst_dir_fd=dfd)
                os.link(victim, ".stage", dst_dir_fd=dfd)
            except OSError:
                pass
"""

# Plants a symlink NAME -> TARGET in DIR the moment dockyard creates the temporary file it
# writes NAME through (".NAME.<pid>.<n>.tmp"), i.e. after dockyard looked at NAME.
SYMLINK_PLANTER = r"""
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
root, name, target = sys.argv[1], sys.argv[2], sys.argv[3]
dfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
fd = libc.inotify_init()
libc.inotify_add_watch(fd, root.encode(), 0x100)  # IN_CREATE
print("ready", flush=True)
while True:
    buf = os.read(fd, 65536)
    i = 0
    while i < len(buf):
        _, _, _, n = struct.unpack_from("iIII", buf, i)
        created = buf[i + 16 : i + 16 + n].rstrip(b"\0").decode()
        i += 16 + n
        if created.startswith(f".{name}.") and created.endswith(".tmp"):
            try:
                os.symlink(target, name, dir_fd=dfd)
            except OSError:
                pass
"""


class Attacker:
    def __init__(self, script: str, *args: object) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        time.sleep(0.05)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> Attacker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def decoy_changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def fresh(base: Path, n: int) -> Path:
    path = base / f"try{n}"
    path.mkdir()
    return path


BOUND = 30  # seconds: tests/unit/test_hostile_fuzz.py's RUN_BOUND for "hung"
_PLAN = r"""
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from tests.hostile_world import World
World(Path(sys.argv[1])).run(dry_run=True)
"""


def plan_finishes(base: Path, what: str) -> None:
    """`plan` of the world at `base`, in a child process killed past BOUND seconds."""
    try:
        subprocess.run(
            [sys.executable, "-c", _PLAN, str(base), str(Path.cwd())],
            timeout=BOUND,
            check=True,
            capture_output=True,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"plan of {what} runs past {BOUND}s") from None


def in_the_window(monkeypatch: pytest.MonkeyPatch, act: Callable[[], None], *calls: str) -> None:
    """Run `act` once, just before the first of safepath's renames (`_renameat2`) or of the
    `os` functions named in `calls` that dockyard makes: an attacker acting exactly between
    dockyard's look at a path and its act on it."""
    done: list[bool] = []

    def first() -> None:
        if not done:
            done.append(True)
            act()

    def wrapped(real: Callable[..., None]) -> Callable[..., None]:
        def call(*args: object, **kwargs: object) -> None:
            first()
            real(*args, **kwargs)

        return call

    monkeypatch.setattr(safepath, "_renameat2", wrapped(safepath._renameat2))
    for name in calls:
        monkeypatch.setattr(os, name, wrapped(getattr(os, name)))
