"""Can this host run a storage driver? Real probes, as Docker's graph drivers made them.

Each probe answers with a verdict Docker knew how to act on: `ok`, `not supported`,
`prerequisites missing`, `incompatible backing filesystem` (then the next driver is tried),
or `error` (selection stops). Probes leave nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import stat
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


# statfs(2)'s f_type of the filesystems a Docker root may sit on (linux/magic.h), named as
# `stat -f` and Docker's graphdriver name them. ext2, ext3 and ext4 share one magic number:
# the mount table tells them apart.
EXT_MAGIC = 0xEF53
MAGIC: dict[int, str] = {
    EXT_MAGIC: "ext2/ext3/ext4",
    0x9123683E: "btrfs",
    0x58465342: "xfs",
    0x01021994: "tmpfs",
    0x858458F6: "ramfs",
    0x794C7630: "overlayfs",
    0x61756673: "aufs",
    0x2FC12FC1: "zfs",
    0x6969: "nfs",
    0x65735546: "fuse",
    0xF2F52010: "f2fs",
    0xE0F5E1E2: "erofs",
    0x73717368: "squashfs",
    0x52654973: "reiserfs",
    0x3153464A: "jfs",
    0x4D44: "msdos",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x01021997: "v9fs",
    0x00C36400: "ceph",
    0xCA451A4E: "bcachefs",
    0x9FA0: "proc",
    0x62656572: "sysfs",
    0x1CD1: "devpts",
    0x63677270: "cgroup2",
}


# glibc's struct statfs is 120 bytes on 64-bit Linux (64 on 32-bit); f_type, a C long, is
# its first field.
STATFS_SIZE = 256


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)  # the C library this process already runs on


def fs_magic(path: Path) -> int:
    """statfs(2)'s f_type for `path`: one system call, no `stat -f` process."""
    found = ctypes.create_string_buffer(STATFS_SIZE)
    if _libc().statfs(os.fsencode(path), found) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(path))
    return ctypes.c_long.from_buffer(found).value & 0xFFFFFFFF


MNT_DETACH = 2  # linux/fs.h


def try_mount(fstype: str, target: Path, options: str) -> str | None:
    """Mount `fstype` on `target` and unmount it again, by the system calls (no `mount` and
    `umount` processes): None when it mounted, else why not."""
    where = os.fsencode(target)
    if _libc().mount(fstype.encode(), where, fstype.encode(), 0, os.fsencode(options)) != 0:
        err = ctypes.get_errno()
        return f"{target}: {os.strerror(err)}"
    if _libc().umount2(where, 0) != 0:  # busy (something opened it meanwhile): detached, so
        _libc().umount2(where, MNT_DETACH)  # that the scratch directory can still go
    return None


def mount_type(mountinfo: str, device: int) -> str | None:
    """Pure: the filesystem type of the mount of `device` in /proc/self/mountinfo's text."""
    wanted = f"{os.major(device)}:{os.minor(device)}"
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if sep and len(fields) > 2 and fields[2] == wanted and tail.split():
            return tail.split()[0]
    return None


def fs_type(path: Path, proc: Path = Path("/proc")) -> str:
    """The filesystem type under `path` (`ext4`, `btrfs`, `xfs`, `tmpfs`, ...), from statfs's
    magic number; an ext filesystem is named by its mount (ext2, ext3 and ext4 share one)."""
    magic = fs_magic(path)
    if magic == EXT_MAGIC:
        try:
            mounted = mount_type((proc / "self" / "mountinfo").read_text(), path.stat().st_dev)
        except OSError:
            mounted = None
        if mounted is not None and mounted.startswith("ext"):
            return mounted
    return MAGIC.get(magic, f"unknown (0x{magic:x})")


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
    libc = _libc()
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
    kind = fs_type(where, proc)
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
        why = try_mount("overlay", dirs["merged"], options)
        if why is not None:
            return Probe("overlay2", "not supported", f"a test mount of overlay failed: {why}")
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
            kind = fs_type(where, proc)
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
