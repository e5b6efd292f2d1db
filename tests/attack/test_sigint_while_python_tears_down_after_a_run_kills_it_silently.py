"""After the command has finished, SIGINT ends the process with the one line and 130 (the
handler dockyard puts back when the command returns). But `run()` then left by SystemExit:
Python's finalization puts SIGINT back to the system's default before it collects garbage and
tears the modules down, which takes long after a run that held much in memory (a large spec:
tens of milliseconds). A SIGINT then killed the process by the signal, silently (exit -2 to
the parent), against README's "SIGINT at any moment ends the run with one line".

The command here holds a large object graph, as a run over a large spec does; the signal is
sent once it has said it is done, while the interpreter shuts down."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

HOLDS_MUCH = """
from dockyard import cli, process

def command(words, interruptible=False):
    global kept
    kept = [{"entry": [str(i), i]} for i in range(1_500_000)]  # torn down at exit
    print("done", flush=True)
    return 0

cli._run = command
process.run()
"""


def test_sigint_after_a_large_run_is_never_a_silent_death() -> None:
    run = subprocess.Popen(
        [sys.executable, "-c", HOLDS_MUCH],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert run.stdout is not None
    assert run.stdout.readline() == "done\n"
    time.sleep(0.05)  # the command has returned: the process is on its way out
    run.send_signal(signal.SIGINT)  # not reaped yet: never ProcessLookupError
    _, err = run.communicate(timeout=60)
    assert (run.returncode, err) in ((0, ""), (130, "reconcile: interrupted\n"))
