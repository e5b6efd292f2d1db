"""When dockyard itself is wrong: one line for the person running it, the details in a file
they can attach to a bug report."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import traceback

SUMMARY_CHARS = 200


def summary(e: BaseException) -> str:
    """`KeyError: 'x'`, on one line and not too long."""
    text = " ".join(str(e).split())
    if len(text) > SUMMARY_CHARS:
        text = text[:SUMMARY_CHARS] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def print_traceback(e: BaseException) -> None:
    traceback.print_exception(e, file=sys.stderr)


def write_report(e: BaseException, argv: list[str]) -> str | None:
    """A new file (0600) with the traceback and what was run, or None if none can be made."""
    from dockyard import __version__

    try:
        fd, path = tempfile.mkstemp(prefix="dockyard-crash-", suffix=".txt")
        with os.fdopen(fd, "w") as out:
            out.write(f"dockyard {__version__}, Python {platform.python_version()}, ")
            out.write(f"{platform.system()} {platform.release()} {platform.machine()}\n")
            out.write(f"reconcile {' '.join(argv)}\n\n")
            out.write("".join(traceback.format_exception(e)))
    except OSError:
        return None
    return path
