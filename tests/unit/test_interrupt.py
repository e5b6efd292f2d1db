"""SIGINT at any moment: one line, exit 130, never a traceback from dockyard."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_spec_positions import block_style

HARD_BOUND = 30.0  # seconds a run may take before the test gives up on it
# Where a traceback may still come from: importing the module that installs the handler.
STARTING = {("__main__.py", "<module>"), ("process.py", "<module>")}


@pytest.fixture(scope="module")
def big_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Loading it takes long enough to be interrupted in the middle."""
    path = tmp_path_factory.mktemp("interrupt") / "spec.yaml"
    path.write_text(block_style(40000))
    return path


def start(spec: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dockyard", "validate", str(spec)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def mapped(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_sigint_while_the_spec_loads(big_spec: Path) -> None:
    run = start(big_spec)
    deadline = time.monotonic() + HARD_BOUND
    while not mapped(run.pid, "_pydantic_core") and time.monotonic() < deadline:
        time.sleep(0.002)  # pydantic is imported when the command starts loading the spec
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=HARD_BOUND)
    assert (run.returncode, err) == (130, "reconcile: interrupted\n")


def test_sigint_at_any_moment_is_never_a_dockyard_traceback(big_spec: Path) -> None:
    """From the first instant to the end of the run. Until dockyard/process.py has been
    imported and installs its handler (its imports are only modules Python loaded at start),
    the interpreter is still starting: a signal then kills it or ends in Python's own report,
    which no program can prevent; after that, the outcome is always the one line and 130."""
    outcomes = []
    for step in range(12):
        run = start(big_spec)
        time.sleep(step * 0.08)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=HARD_BOUND)
        outcomes.append((run.returncode, err))
    for code, err in outcomes:
        if code == 130:
            assert err == "reconcile: interrupted\n"
        elif code == 0:
            assert err == ""  # it had finished
        else:
            assert "reconcile:" not in err
            frames = set(re.findall(r'File ".*/dockyard/([^"]+)", line \d+, in (\S+)', err))
            assert frames <= STARTING, err


FINALIZER_RAISES = """
import time
from dockyard import process
process.raise_on_interrupt()

class Finalized:
    def __del__(self):
        raise KeyboardInterrupt

try:
    Finalized()  # dropped at once: its __del__ raises where nothing can catch it
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pass
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted", process.was_interrupted())
"""


def test_an_interrupt_python_could_not_raise_is_sent_again() -> None:
    """A KeyboardInterrupt raised in a finalizer is "ignored" by Python: dockyard sends SIGINT
    again so that the run is interrupted at the next point that can unwind, and the handler
    never raises inside the hook (Python would print "Exception ignored" and a traceback)."""
    done = subprocess.run(
        [sys.executable, "-c", FINALIZER_RAISES],
        capture_output=True,
        text=True,
        timeout=HARD_BOUND,
        cwd=Path(__file__).parents[2],
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "interrupted True\n", "")


def test_what_a_command_built_is_held_only_by_a_process_that_ends_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`reconcile` ends by os._exit and skips freeing a large run (hold_to_the_end); a
    program calling cli.main in Python keeps nothing beyond the call."""
    from dockyard import process

    monkeypatch.setattr(process, "_held", [])
    monkeypatch.setattr(process, "_ends_at_once", [])
    built = object()
    process.hold_to_the_end(built)
    assert process._held == []
    monkeypatch.setattr(process, "_ends_at_once", [True])
    process.hold_to_the_end(built)
    assert process._held == [built]
