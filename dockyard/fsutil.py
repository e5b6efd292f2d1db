"""File writes that a crash cannot leave half-done: temporary file, fsync, rename, fsync dir."""

import os
import tempfile
from pathlib import Path


def _durable_temp(path: Path, data: bytes, mode: int) -> Path:
    """`data` in a new file beside `path`, on disk (fsynced) before it takes any name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` so that a reader sees the old content or the new, never a mix."""
    tmp = _durable_temp(path, data, mode)
    try:
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def create_new(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write `path` whole, only if it does not exist: True if written, False if it was there.
    A crash leaves no file or a complete one, never a file that clobbered another."""
    tmp = _durable_temp(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
