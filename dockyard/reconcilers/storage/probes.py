"""Can this host run a storage driver? Real probes, as Docker's graph drivers made them.

Each probe answers with a verdict Docker knew how to act on: `ok`, `not supported`,
`prerequisites missing`, `incompatible backing filesystem` (then the next driver is tried),
or `error` (selection stops). Probes leave nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.spec import storage_options

NEXT = ("not supported", "prerequisites missing", "incompatible backing filesystem")


@dataclass(frozen=True)
class Probe:
    driver: str
    verdict: str  # "ok", one of NEXT, or "error"
    reason: str


def filesystems(proc: Path) -> set[str]:
    try:
        text = (proc / "filesystems").read_text()
    except OSError:
        return set()
    return {line.split()[-1] for line in text.splitlines() if line.split()}


def existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path("/")


def fs_type(path: Path) -> str:
    """The filesystem type name under `path` (`btrfs`, `ext2/ext3`, `xfs`, `tmpfs`, ...)."""
    out = subprocess.run(
        ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "unknown"


class _Dirent(ctypes.Structure):
    _fields_ = [  # ctypes layout of glibc's struct dirent on 64-bit Linux
        ("d_ino", ctypes.c_uint64),
        ("d_off", ctypes.c_int64),
        ("d_reclen", ctypes.c_uint16),
        ("d_type", ctypes.c_uint8),
        ("d_name", ctypes.c_char * 256),
    ]


def supports_d_type(directory: Path) -> bool:
    """Whether readdir() on this filesystem says what each entry is (overlay needs it)."""
    libc = ctypes.CDLL(None, use_errno=True)  # the C library this process already runs on
    libc.opendir.restype = ctypes.c_void_p
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.readdir.restype = ctypes.POINTER(_Dirent)
    libc.closedir.argtypes = [ctypes.c_void_p]
    (directory / "probe").mkdir()
    handle = libc.opendir(os.fsencode(directory))
    if not handle:
        return False
    try:
        while True:
            entry = libc.readdir(handle)
            if not entry:
                return False
            if entry.contents.d_name == b"probe":
                return bool(entry.contents.d_type != 0)  # DT_UNKNOWN is 0
    finally:
        libc.closedir(handle)


@contextlib.contextmanager
def scratch(near: Path) -> Iterator[Path]:
    """A temporary directory on the same filesystem as `near`, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=".dockyard-probe-", dir=existing_ancestor(near)))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def probe_overlay(root: Path, proc: Path) -> Probe:
    if "overlay" not in filesystems(proc):
        return Probe("overlay2", "not supported", "no overlay in /proc/filesystems")
    where = existing_ancestor(root)
    kind = fs_type(where)
    if kind in ("btrfs", "overlayfs", "aufs", "zfs", "nfs"):
        return Probe("overlay2", "incompatible backing filesystem", f"{where} is {kind}")
    with scratch(root) as tmp:
        if not supports_d_type(tmp):
            return Probe(
                "overlay2", "incompatible backing filesystem", f"{where} lacks d_type support"
            )
        dirs = {name: tmp / name for name in ("lower", "upper", "work", "merged")}
        for d in dirs.values():
            d.mkdir()
        if any(c in str(tmp) for c in ",:"):
            return Probe(
                "overlay2", "incompatible backing filesystem", f"{tmp}: ',' or ':' in path"
            )
        options = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
        mounted = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(dirs["merged"])],
            capture_output=True,
            text=True,
            check=False,
        )
        if mounted.returncode != 0:
            why = mounted.stderr.strip() or "mount failed"
            return Probe("overlay2", "not supported", f"a test mount of overlay failed: {why}")
        subprocess.run(["umount", str(dirs["merged"])], capture_output=True, check=False)
    return Probe("overlay2", "ok", f"overlay mounts on {where} ({kind}), with d_type")


def _block_device(path: Path) -> str | None:
    """Why `path` is not a block device, or None. Looked at, never opened."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"{path} does not exist"
    return None if stat.S_ISBLK(mode) else f"{path} is not a block device"


def devicemapper_options(options: Sequence[str], dev: Path) -> list[str]:
    """What Docker 1.6's devicemapper, given these `storage.options`, needed and this host
    lacks: the thin pool, data and metadata devices they name, the mkfs of `dm.fs`."""
    held = storage_options.parsed(list(options))
    lacking = []
    pool = held.get("dm.thinpooldev")
    if isinstance(pool, str):
        why = _block_device(dev / "mapper" / pool)
        lacking += [f"dm.thinpooldev: {why}"] if why else []
    for key in ("dm.datadev", "dm.metadatadev"):
        device = held.get(key)
        if isinstance(device, str):
            why = _block_device(Path(device))
            lacking += [f"{key}: {why}"] if why else []
    fs = held.get("dm.fs", "ext4")
    tools = ("mkfs.xfs",) if fs == "xfs" else ("mkfs.ext4", "tune2fs")
    lacking += [f"dm.fs={fs}: {t} is not installed" for t in tools if shutil.which(t) is None]
    return lacking


def probe(
    driver: str,
    root: Path,
    proc: Path,
    options: Sequence[str] = (),
    sys: Path = Path("/sys"),
    dev: Path = Path("/dev"),
) -> Probe:
    """Run `driver`'s probe; devicemapper's also checks what its `storage.options` need."""
    try:
        if driver == "aufs":
            if "aufs" in filesystems(proc):
                return Probe(driver, "ok", "aufs is in /proc/filesystems")
            return Probe(driver, "not supported", "no aufs in /proc/filesystems")
        if driver == "btrfs":
            where = existing_ancestor(root)
            kind = fs_type(where)
            if kind == "btrfs":
                return Probe(driver, "ok", f"{where} is on btrfs")
            return Probe(driver, "not supported", f"{where} is on {kind}, not btrfs")
        if driver == "devicemapper":
            if shutil.which("dmsetup") is None:
                return Probe(driver, "prerequisites missing", "dmsetup is not installed")
            if not (sys / "module/dm_thin_pool").exists():
                return Probe(driver, "prerequisites missing", "no thin-pool support (dm_thin_pool)")
            lacking = devicemapper_options(options, dev)
            if lacking:  # Docker's NewDeviceSet failed on these: its daemon did not start
                return Probe(driver, "error", "; ".join(lacking))
            return Probe(driver, "ok", "dmsetup and thin-pool support are present")
        if driver in ("overlay2", "overlay"):
            found = probe_overlay(root, proc)
            return Probe(driver, found.verdict, found.reason)
        if driver == "vfs":
            return Probe(driver, "ok", "vfs works everywhere")
        return Probe(driver, "error", f"unknown driver {driver}")
    except OSError as e:
        return Probe(driver, "error", f"probe failed: {e.strerror or e}")
