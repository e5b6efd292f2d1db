from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.sandbox import Sandbox, sandbox


def pytest_configure(config: pytest.Config) -> None:
    """Specs the tests load in process are kept (dockyard.spec.kept) in a directory of the
    session's, never in this machine's /var/cache/dockyard."""
    if "DOCKYARD_CACHE_DIR" not in os.environ:
        made = tempfile.mkdtemp(prefix="dockyard-cache-")
        os.environ["DOCKYARD_CACHE_DIR"] = made
        config.add_cleanup(lambda: shutil.rmtree(made, ignore_errors=True))


# Why a test cannot run where it must (CI), set by pytest_collection_modifyitems.
_CANNOT_RUN = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Integration tests need root and `ip netns`. In CI they must run, never skip quietly:
    each fails, saying why (a usage error would only crash a pytest-xdist worker, and the
    controller would report an internal error naming neither it nor the reason)."""
    missing = None
    if os.geteuid() != 0:
        missing = "needs root for network namespaces"
    elif shutil.which("ip") is None:
        missing = "needs iproute2 (ip)"
    if missing is None:
        return
    for item in items:
        if "root" not in item.keywords:
            continue
        if os.environ.get("CI"):
            item.stash[_CANNOT_RUN] = f"integration tests cannot run in CI: {missing}"
        else:
            item.add_marker(pytest.mark.skip(reason=missing))


def pytest_runtest_setup(item: pytest.Item) -> None:
    why = item.stash.get(_CANNOT_RUN, None)
    if why is not None:
        pytest.fail(why, pytrace=False)


@pytest.fixture
def box_factory() -> Iterator[Any]:
    """Makes sandboxes (a netns + a temporary root) that are deleted when the test ends."""
    stack: list[Any] = []

    def make(spec: dict[str, Any] | None = None) -> Sandbox:
        ctx = sandbox(spec or {"version": 1})
        stack.append(ctx)
        return ctx.__enter__()

    yield make
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
def box(box_factory: Any) -> Sandbox:
    made: Sandbox = box_factory()
    return made
