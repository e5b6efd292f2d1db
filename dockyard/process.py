"""The `reconcile` process: what only a process that owns its signals may do.

SIGINT can come at any moment: before the command has started (while Python imports it) or
after it has finished, the process says so in one line and exits 130 at once; while the
command runs, it raises KeyboardInterrupt so that the run unwinds through its cleanup (the
lock, the ledger) and ends the same way.
"""

from __future__ import annotations

# Only what Python has loaded at start-up: until the handler below is in place, SIGINT is
# Python's (importing typing here took 50 ms on a busy machine: a window for a traceback).
import _thread
import gc
import io
import os
import signal
import sys
import time
from types import FrameType

EXIT_INTERRUPTED = 130
_MESSAGE = b"reconcile: interrupted\n"
_received: list[int] = []
# A SIGINT to send again (it came inside a finalizer) that no KeyboardInterrupt acted on yet.
_pending: list[int] = []


def _exit_now(signum: int, frame: FrameType | None) -> None:
    os.write(2, _MESSAGE)
    os._exit(EXIT_INTERRUPTED)


def _raise(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    if _in_hook(frame):  # raised there, it would be one more "Exception ignored"
        _send_later()
        return
    _pending.clear()  # this one is acted on: one sent again would be another Ctrl-C
    raise KeyboardInterrupt


def exit_on_interrupt() -> None:
    signal.signal(signal.SIGINT, _exit_now)


def raise_on_interrupt() -> None:
    global _main
    _main = _thread.get_ident()
    signal.signal(signal.SIGINT, _raise)
    sys.unraisablehook = _again


_main = _thread.get_ident()


def _again(unraisable: sys.UnraisableHookArgs) -> None:
    """A KeyboardInterrupt raised where Python cannot pass it on (a finalizer, a callback
    from C) would be printed as "Exception ignored" and lost: the signal is sent again, so
    that it interrupts the run at the next point that can unwind."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _send_later()
        return
    sys.__unraisablehook__(unraisable)


def _in_hook(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code is _again.__code__:
            return True
        frame = frame.f_back
    return False


def _send_later() -> None:
    """Sent from the hook itself, the signal would be handled before the hook returns. A
    thread of the C runtime sends it once the main thread has left the hook (no threading:
    its locks are not reentrant, and this may run inside a signal handler). The process may
    end before that thread runs: `run` then acts on it (`take_pending`)."""
    _pending.append(signal.SIGINT)
    _thread.start_new_thread(_send_when_out_of_hook, ())


def _send_when_out_of_hook() -> None:
    while _in_hook(sys._current_frames().get(_main)):
        time.sleep(0.001)
    if take_pending():
        os.kill(os.getpid(), signal.SIGINT)


def take_pending() -> bool:
    """Whether a SIGINT noted during the run is still to be sent again. Taken at once (one
    list.pop under the GIL): by the thread or by `run`, never by both."""
    try:
        _pending.pop()
    except IndexError:
        return False
    _pending.clear()
    return True


def was_interrupted() -> bool:
    """Whether SIGINT came while the command ran. An extension may turn the KeyboardInterrupt
    into an error of its own (pyo3, importing pydantic-core, raises a PanicException): that
    error is the interrupt, not a bug."""
    return bool(_received)


_exit_code: list[int] = []
_ends_at_once: list[bool] = []  # set by `run`: the process ends in `_finish`, by os._exit
_held: list[object] = []


def hold_to_the_end(*objects: object) -> None:
    """Keep what a command built until the process ends at once (`_finish`): freed on the way
    out of the command, a large spec's 100,000 entries and the 300,000 rule texts made from
    them took 25-30 ms. Called from Python rather than by `reconcile`, nothing is held."""
    if _ends_at_once:
        _held.extend(objects)


def _finish() -> None:
    """The last exit function (registered first): the others, such as the spec cache's writer,
    have run, and SIGINT is still dockyard's. Python's finalization, next, would give SIGINT
    back to the system's default before tearing down what the run held (tens of ms after a
    large spec): a SIGINT then killed the process silently. It ends here instead."""
    if not _exit_code:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # Python's own finalization reports it, as it would have
    os._exit(_exit_code[0])


def run() -> None:
    """The console script `reconcile` and `python -m dockyard`."""
    exit_on_interrupt()
    # A run is short and ends at once (`_finish`): reference counting frees all but cycles,
    # of which a converge leaves 1,100-1,600 objects at 10 ports as at 100,000 (counted by
    # `gc.collect()` at its exit), and the cycle collector's passes over the imports, the
    # spec's entries and the rules' texts took 8 ms of a small run and 20-70 ms of one at
    # 100,000 ports. A watch, which runs for good, turns it back on (watch.main).
    gc.disable()
    import atexit  # built in: no window

    atexit.register(_finish)
    _ends_at_once.append(True)
    # A rule read back may hold bytes that are not UTF-8 (a comment someone wrote): shown as
    # escapes, not an error, wherever it is printed.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    from dockyard.cli import interrupted, main

    try:
        code = main(interruptible=True)
    except KeyboardInterrupt:  # in the instant before main's own handler took over
        exit_on_interrupt()
        code = interrupted()
    if code != EXIT_INTERRUPTED and take_pending():  # came in the run's last instant
        code = interrupted()
    if code == EXIT_INTERRUPTED:
        # Python exits by SIGINT instead of with this code when a KeyboardInterrupt ever went
        # through code an extension ran with PyRun_*, even one caught since.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _exit_code.append(code)
    raise SystemExit(code)


class DeferredInterrupts:
    """SIGINT is noted, not acted on, until the block ends. For importing pyo3 extensions
    (pydantic-core, yaml-rs): a KeyboardInterrupt inside their initialisation becomes a Rust
    panic, which prints its own report to stderr before Python sees it."""

    def __enter__(self) -> None:
        self.previous = signal.getsignal(signal.SIGINT)
        self.pending: list[int] = []
        signal.signal(signal.SIGINT, lambda signum, frame: self.pending.append(signum))

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.previous)
        if self.pending and callable(self.previous):
            self.previous(signal.SIGINT, None)
