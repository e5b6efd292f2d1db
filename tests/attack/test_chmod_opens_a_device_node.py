"""Tree.set_attrs (the chmod of `<root>/init/dockerinit-<version>` whose mode drifted) opened the
name for reading and only then looked at what it had opened: a device node put there after
the observation was opened, and opening a device runs its driver (a tty becomes the
controlling terminal, a watchdog starts). Issue 11: a device where a regular file is expected
"is never followed, replaced, or deleted", and every operation acts on what was looked at."""

from __future__ import annotations

import ctypes
import os
import stat
import struct
from pathlib import Path

import pytest

from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.exec_init import ExecInit
from dockyard.spec import load
from dockyard.state.host import Host
from dockyard.state.safepath import Unsafe
from tests.hostile_world import INIT_BINARY, make_world

IN_OPEN = 0x20
_libc = ctypes.CDLL(None, use_errno=True)


def test_a_device_swapped_in_before_the_chmod_is_not_opened(tmp_path: Path) -> None:
    world = make_world(tmp_path, legacy=False)
    init = world.root / "init" / "dockerinit-1.2.0"
    init.parent.mkdir(parents=True)
    init.write_bytes(INIT_BINARY)
    init.chmod(0o755)
    spec = load(world.spec)
    host = Host.for_spec(spec)
    reconciler = ExecInit()
    seen = Seen()
    seen.add("exec", reconciler.observe(spec, host))
    (change,) = reconciler.diff(spec, seen)
    assert change.action == "update"
    init.unlink()
    os.mknod(init, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers: harmless
    watch = _libc.inotify_init1(os.O_NONBLOCK)
    assert watch >= 0 and _libc.inotify_add_watch(watch, str(init).encode(), IN_OPEN) >= 0
    try:
        with pytest.raises(Unsafe, match="is a device where a regular file belongs"):
            reconciler.apply(change, host)
        try:
            events = os.read(watch, 4096)
        except BlockingIOError:
            events = b""
    finally:
        os.close(watch)
    opened = [struct.unpack_from("iIII", events, i)[1] & IN_OPEN for i in range(0, len(events), 16)]
    assert not any(opened), f"the chmod opened the device node {init}"
    assert stat.S_ISCHR(init.lstat().st_mode)
