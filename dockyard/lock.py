"""One run at a time: an exclusive flock, held for the whole observe-apply-verify cycle."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from dockyard.errors import LockTimeout
from dockyard.state.safepath import Tree

WATCH_PIDFILE = "dockyard.pid"  # in state_dir, beside the lock, while a watch runs


def _holder_pid(fd: int) -> str | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return text if text.isdigit() else None


def _holder(fd: int) -> str:
    pid = _holder_pid(fd)
    return f"pid {pid}" if pid else "another process"


def _watch_holds(tree: Tree, fd: int) -> str | None:
    """The pid of the watch that holds the lock, when the holder is one: a watch writes the
    same pid in the lock and in its own pid file, and never lets go."""
    pid = _holder_pid(fd)
    try:
        own = tree.read(WATCH_PIDFILE, 32)
    except OSError:
        return None
    return pid if pid and own is not None and own.decode(errors="replace").strip() == pid else None


@contextlib.contextmanager
def exclusive(
    path: Path, timeout: float, *, wait_for_watch: bool = True, hint: str = "--lock-timeout"
) -> Iterator[None]:
    """Hold `path` locked; wait up to `timeout` seconds for another holder, then name it.

    Without `wait_for_watch`, a watch holding the lock is an error at once (it never lets go).
    `hint` names the option that sets the wait, in the error; "" when the command has none."""
    tree = Tree(path.parent)
    with tree.open_private(path.name) as fd:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                watch = None if wait_for_watch else _watch_holds(tree, fd)
                if watch is not None:
                    raise LockTimeout(
                        f"{path} is held by a watch (pid {watch}), which never lets go; stop "
                        "it first (or --wait to wait anyway)"
                    ) from None
                if time.monotonic() >= deadline:
                    see = f" (see {hint})" if hint else ""
                    raise LockTimeout(
                        f"{path} is held by {_holder(fd)} (another reconcile); "
                        f"gave up after {timeout:g}s{see}"
                    ) from None
                if not told:
                    print(f"waiting for {path}, held by {_holder(fd)}", file=sys.stderr)
                    told = True
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
