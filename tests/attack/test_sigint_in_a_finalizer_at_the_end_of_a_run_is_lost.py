"""A SIGINT that lands while a finalizer runs is raised there as a KeyboardInterrupt Python
cannot pass on; dockyard sends SIGINT again from a thread once the main thread has left
sys.unraisablehook. When the command's last act is such a finalizer (objects are finalized
as the command's frames return), the process went on to exit before that thread ever got
the interpreter: the interrupt was lost, the run ended 0 and said nothing. README: SIGINT at
any moment ends the run with the one line `reconcile: interrupted` and exit 130.

And when a second Ctrl-C raised while that re-send waited, the re-send still came: a third
interrupt the user never sent, cutting the run's cleanup short."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The real `reconcile` process (dockyard.process.run, its handlers and hook), running a
# command whose last act drops an object: the user's Ctrl-C lands in its finalizer.
LAST_ACT_IS_A_FINALIZER = """
import os, signal
from dockyard import cli, process

class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the finalizer runs

def command(words, interruptible=False):
    Finalized()
    return 0

cli._run = command
process.run()
"""


def python(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a Python of its own, importing this checkout's dockyard."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parents[2],
    )


def test_sigint_in_the_last_finalizer_of_a_run_ends_it_as_interrupted() -> None:
    for _ in range(3):
        done = python(LAST_ACT_IS_A_FINALIZER)
        assert (done.returncode, done.stderr) == (130, "reconcile: interrupted\n")


# Ctrl-C lands in a finalizer (its re-send waits for the main thread to leave the hook), and
# a second Ctrl-C comes at once: that one raises, and the run unwinds through its cleanup.
SECOND_CTRL_C_WHILE_THE_RESEND_WAITS = """
import os, signal, time
from dockyard import process
process.raise_on_interrupt()

class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)

try:
    Finalized()
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    print("not interrupted")
except KeyboardInterrupt:
    deadline = time.monotonic() + 0.3  # the cleanup: a sent-again SIGINT would cut it short
    while time.monotonic() < deadline:
        pass
    print("cleaned up")
"""


def test_a_second_ctrl_c_while_the_resend_waits_is_acted_on_once() -> None:
    done = python(SECOND_CTRL_C_WHILE_THE_RESEND_WAITS)
    assert (done.returncode, done.stdout, done.stderr) == (0, "cleaned up\n", "")
