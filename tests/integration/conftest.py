from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devtools.sandbox import Sandbox
from tests.integration.watching import Watcher


@pytest.fixture
def watcher(box: Sandbox) -> Iterator[Callable[..., Watcher]]:
    """Starts watches on `box` (`watcher(*extra, count_passes=False)`); each is killed at the
    end if still running."""
    started: list[Watcher] = []

    def start(*extra: str, count_passes: bool = False) -> Watcher:
        w = Watcher(box, *extra, count_passes=count_passes)
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()
