"""Work a run may do while it waits on the host. Held until the run first waits for another
program (an iptables commit or read, where its own thread sleeps), so that it takes nothing
from the run's own work in Python; at the latest it starts at exit, which waits for it."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable

_held: list[threading.Thread] = []
_started: list[threading.Thread] = []
_lock = threading.Lock()


def later(work: Callable[[], None], name: str) -> None:
    """Run `work` on a thread of its own once the run waits, or at exit."""
    with _lock:
        if not _held and not _started:
            atexit.register(finish)
        _held.append(threading.Thread(target=work, name=name, daemon=True))


def waiting() -> None:
    """The run is about to wait for another program: the work held starts now."""
    with _lock:
        threads = _held[:]
        _held.clear()
        _started.extend(threads)
    for thread in threads:
        thread.start()


def finish() -> None:
    """Start what is still held and wait for all of it (a daemon thread dies with the
    process)."""
    waiting()
    for thread in _started:
        thread.join()
