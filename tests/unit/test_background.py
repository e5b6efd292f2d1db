"""Work held until the run waits on the host: never before, always by exit."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from dockyard import background


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
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout
    assert out == "run over\nkept\n"
