"""Work a run may do while it waits on the host. Held until the run first waits for another
program (an iptables commit or read, where its own thread sleeps), so that it takes nothing
from the run's own work in Python; at the latest it is done at exit."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable

_held: list[threading.Thread] = []
_started: list[threading.Thread] = []
_lock = threading.Lock()
_registered: list[bool] = []


def later(work: Callable[[], None], name: str) -> None:
    """Run `work` on a thread of its own once the run waits, else at exit."""
    with _lock:
        if not _registered:
            _registered.append(True)
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
    """Wait for the work started (a daemon thread dies with the process), then do what is
    still held here: at exit no thread may start (Python 3.12 refuses one once the
    interpreter shuts down, exit functions included), and none is needed."""
    for thread in _started:
        thread.join()
    with _lock:
        held = _held[:]
        _held.clear()
    for thread in held:
        thread.run()
