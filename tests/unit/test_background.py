"""Work held until the run waits on the host: never before, always by exit."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from dockyard import background


def run_python(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)


@pytest.fixture(autouse=True)
def nothing_left_over() -> Iterator[None]:
    background.finish()
    yield
    background.finish()


def test_held_work_starts_only_when_the_run_waits() -> None:
    ran = threading.Event()
    background.later(ran.set, "test")
    assert not ran.wait(0.2)
    background.waiting()
    assert ran.wait(5)


def test_finish_starts_what_is_held_and_waits_for_it() -> None:
    done: list[str] = []
    release = threading.Event()

    def slow() -> None:
        release.wait(5)
        done.append("slow")

    background.later(slow, "slow")
    background.waiting()
    background.later(lambda: done.append("held"), "held")
    threading.Timer(0.1, release.set).start()
    background.finish()
    assert sorted(done) == ["held", "slow"]


def test_work_held_at_exit_is_done_before_the_process_ends() -> None:
    program = (
        "from dockyard import background\n"
        "background.later(lambda: print('kept', flush=True), 'test')\n"
        "print('run over', flush=True)\n"
    )
    done = run_python(program)
    assert (done.returncode, done.stdout) == (0, "run over\nkept\n")


def test_work_held_at_exit_is_done_where_no_thread_can_start() -> None:
    """Python 3.12 refuses to start a thread once the interpreter is shutting down, exit
    functions included ("can't create new thread at interpreter shutdown"): the work still
    held at exit (a `validate`, a `plan` whose read ahead had ended) is done all the same,
    with nothing reported. Here the refusal is made by hand, by an exit function that runs
    before background's, so that any Python shows it."""
    program = (
        "import atexit, threading\n"
        "from dockyard import background\n"
        "background.later(lambda: print('kept', flush=True), 'test')\n"
        "def refuse(*args):\n"
        '    raise RuntimeError("can\'t create new thread at interpreter shutdown")\n'
        "atexit.register(lambda: setattr(threading, '_start_new_thread', refuse))\n"
        "print('run over', flush=True)\n"
    )
    done = run_python(program)
    assert (done.returncode, done.stdout, done.stderr) == (0, "run over\nkept\n", "")


def test_exit_waits_once_however_often_work_is_held() -> None:
    """finish is registered to run at exit once, not once for each time nothing was held."""
    program = (
        "import atexit\n"
        "from dockyard import background\n"
        "registered = []\n"
        "atexit.register = registered.append\n"
        "for n in range(3):\n"
        "    background.later(lambda: None, 'test')\n"
        "    background.finish()\n"
        "print(len(registered))\n"
    )
    done = run_python(program)
    assert (done.returncode, done.stdout) == (0, "1\n")
