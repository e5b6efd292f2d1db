"""The unnamed files the iptables tools write into, read back as text."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import IO

import pytest

from dockyard.state.scratch import scratch, text


@pytest.mark.parametrize("make", [scratch, tempfile.TemporaryFile])
def test_what_was_written_is_read_back_whatever_its_bytes(make: Callable[[], IO[bytes]]) -> None:
    written = b'-A DOCKYARD -j ACCEPT\n-A X -m comment --comment "caf\xe9" -j DROP\n' * 3
    with make() as file:
        file.write(written)
        got = text(file, "surrogateescape")
        assert got.encode(errors="surrogateescape") == written
        assert got.startswith("-A DOCKYARD -j ACCEPT\n")


def test_an_empty_file_is_empty_text() -> None:
    with scratch() as file:
        assert text(file, "surrogateescape") == ""
