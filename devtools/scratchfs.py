"""A throwaway filesystem of a given kind, mounted in a directory the caller owns and
unmounted afterwards: tmpfs of a given size, or btrfs / xfs (the filesystems with reflinks) on a
sparse image file beside it, through a loop device that goes when it is unmounted. Used by the
vfs migration tests and benchmark; needs root, and mkfs.btrfs / mkfs.xfs for those kinds
(Debian's btrfs-progs, xfsprogs)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

MKFS = {"btrfs": ["mkfs.btrfs", "-q"], "xfs": ["mkfs.xfs", "-q"]}
SMALLEST = {"btrfs": 128 << 20, "xfs": 300 << 20}  # what mkfs accepts


class Unavailable(Exception):
    """This machine cannot make that filesystem (the reason is the message)."""


def why_not(kind: str) -> str | None:
    """Why a filesystem of `kind` cannot be made here, or None."""
    if kind == "tmpfs":
        return None
    if shutil.which(MKFS[kind][0]) is None:
        return f"{MKFS[kind][0]} is not installed"
    if kind not in Path("/proc/filesystems").read_text().split():
        return f"this kernel has no {kind}"
    return None


@contextlib.contextmanager
def mounted(kind: str, where: Path, size: int, at: Path | None = None) -> Iterator[Path]:
    """A new, empty filesystem of `kind` of `size` bytes (at least what mkfs accepts),
    mounted on `at` (an existing directory), else on `where`/mnt; `where` holds its image.
    Raises `Unavailable` when it cannot be made."""
    reason = why_not(kind)
    if reason:
        raise Unavailable(reason)
    where.mkdir(parents=True, exist_ok=True)
    mnt = at or where / "mnt"
    mnt.mkdir(exist_ok=True)
    if kind == "tmpfs":
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]
    else:
        image = where / f"{kind}.img"
        with image.open("wb") as f:
            f.truncate(max(size, SMALLEST[kind]))
        made = subprocess.run([*MKFS[kind], str(image)], capture_output=True, text=True)
        if made.returncode != 0:
            raise Unavailable(f"mkfs {kind} failed: {made.stderr.strip()}")
        command = ["mount", "-o", "loop", str(image), str(mnt)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise Unavailable(f"cannot mount {kind}: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def used(path: Path) -> int:
    """Bytes in use on the filesystem of `path`, once what is written is on it (syncfs: a
    filesystem allocates late)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ctypes.CDLL(None, use_errno=True).syncfs(fd)
    finally:
        os.close(fd)
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize
