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


def _holder(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return f"pid {text}" if text.isdigit() else "another process"


@contextlib.contextmanager
def exclusive(path: Path, timeout: float) -> Iterator[None]:
    """Hold `path` locked; wait up to `timeout` seconds for another holder, then name it."""
    with Tree(path.parent).open_private(path.name) as fd:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{path} is held by {_holder(fd)} (another reconcile); "
                        f"gave up after {timeout:g}s (see --lock-timeout)"
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
