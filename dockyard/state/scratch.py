"""Unnamed files for what the iptables tools read and write (20-30 MB at 100,000 published
ports): in memory (memfd), where the kernel has it, so that nothing goes through the
filesystem of /tmp; else an unnamed temporary file."""

from __future__ import annotations

import mmap
import os
import tempfile
from typing import IO


def scratch() -> IO[bytes]:
    try:
        fd = os.memfd_create("dockyard", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        return tempfile.TemporaryFile()
    return open(fd, "w+b")


def text(file: IO[bytes], errors: str) -> str:
    """What a tool wrote into `file`, as text, decoded straight from the file's pages: reading
    it into bytes first costs a copy (20 ms for 30 MB). Only for a file nobody else can cut
    short any more (the tool has ended): a mapped file cut short would end the process with
    SIGBUS."""
    file.flush()
    size = os.fstat(file.fileno()).st_size
    if size == 0:
        return ""
    with mmap.mmap(file.fileno(), size, prot=mmap.PROT_READ) as pages:
        return str(pages, "utf-8", errors)
