"""Unnamed files for what the iptables tools read and write (20-30 MB at 100,000 published
ports): in memory (memfd), where the kernel has it, so that nothing goes through the
filesystem of /tmp; else an unnamed temporary file."""

from __future__ import annotations

import os
import tempfile
from typing import IO


def scratch() -> IO[bytes]:
    try:
        fd = os.memfd_create("dockyard", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        return tempfile.TemporaryFile()
    return open(fd, "w+b")
