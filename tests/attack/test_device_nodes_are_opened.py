"""README: "A symlink, a FIFO, a socket or a device where dockyard expects a directory or a
regular file, is an error note ... touches nothing of it", and safepath.read_file looks at a
host file *before* opening it because "opening a device can act". But Tree.read (and
open_regular, append, open_private, _held) opens the name first and looks afterwards; where no
lstat comes first -- `repositories-*` (tagstore), `containers/<id>/config.json` (containers),
`graph/<id>/json`, `repositories`, the journal and progress file (migration) -- a device node
planted there is opened by `plan` as well as apply, and without O_NOCTTY.

Opening a device runs its driver's open. With a tty, that makes the tty dockyard's controlling
terminal whenever dockyard is a session leader (as under systemd): its holder can then signal
dockyard through it (SIGINT/SIGTSTP/SIGHUP)."""

from __future__ import annotations

import ctypes
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_world import make_world

IN_OPEN = 0x20
_libc = ctypes.CDLL(None, use_errno=True)


def opened_by_plan(world, node: Path) -> bool:
    fd = _libc.inotify_init1(os.O_NONBLOCK)
    assert fd >= 0
    try:
        assert _libc.inotify_add_watch(fd, str(node).encode(), IN_OPEN) >= 0
        world.run(dry_run=True)
        try:
            events = os.read(fd, 4096)
        except BlockingIOError:
            return False
        return any(
            struct.unpack_from("iIII", events, i)[1] & IN_OPEN for i in range(0, len(events), 16)
        )
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "where", ["repositories-zfs", "containers/c0ffee000001/config.json", "graph/base0000/json"]
)
def test_plan_does_not_open_a_device_node(tmp_path: Path, where: str) -> None:
    world = make_world(tmp_path)
    node = world.root / where
    node.unlink(missing_ok=True)
    os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers: harmless
    assert not opened_by_plan(world, node), f"plan opened the device node {node}"


CHILD = r"""
import os, sys
sys.path.insert(0, sys.argv[2])
from tests.hostile_world import World
World(__import__("pathlib").Path(sys.argv[1])).run(dry_run=True)
tty_nr = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[4])
print(tty_nr)
"""


@pytest.mark.skipif(not Path("/sys/class/tty/tty63").exists(), reason="needs virtual console 63")
def test_a_tty_node_becomes_the_controlling_terminal_of_plan(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    node = world.root / "repositories-zfs"
    os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(4, 63))
    # The attacker keeps the tty open (else its last close would drop it as a ctty again).
    hold = os.open(node, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path), str(Path.cwd())],
            start_new_session=True,  # a session leader without a terminal, as under systemd
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        os.close(hold)
    assert int(child.stdout.split()[-1]) == 0, "plan acquired tty 4:63 as controlling terminal"
