"""Tree.write creates its temporary file (O_CREAT|O_EXCL|O_NOFOLLOW), closes it, and opens it
again *by name* (O_WRONLY|O_NOFOLLOW) to fchown, fchmod and write it. O_NOFOLLOW does not stop a
hard link: whoever can write in the directory replaces the temporary name, between the close and
the open, by a hard link to any file on the same filesystem, and dockyard then chmods, chowns and
overwrites that file (outside the root), and renames its name over the target.

Every file dockyard writes goes this way: resolv.conf, resolv.conf.hash, repositories-<driver>,
the migration journal, aufs/layers/<id>, the init layer's files, .linkgraph.db.new,
init/dockerinit-<v>, and in state_dir ledger.json and dockyard.pid; and the undo of a removed pid
file in the pid file's directory."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dockyard.state import safepath
from tests.attack.attackers import HARDLINK_SWAPPER, Attacker, decoy_changed, fresh
from tests.hostile_world import make_world, snapshot

PRECIOUS = b"nothing may change me\n"


def test_a_temporary_file_swapped_for_a_hard_link_writes_outside_the_root(
    tmp_path: Path, monkeypatch
) -> None:
    """Deterministic: the attacker acts exactly in the window (after the temporary file is
    created and closed, before dockyard opens it again)."""
    world = make_world(tmp_path)
    victim = world.decoy / "precious"
    real = safepath._temporary

    def temporary(dirfd: int, name: str, mode: int) -> str:
        tmp = real(dirfd, name, mode)
        if name == "resolv.conf":  # the attacker: rename a hard link over the temporary name
            os.link(victim, ".stage", dst_dir_fd=dirfd)
            os.rename(".stage", tmp, src_dir_fd=dirfd, dst_dir_fd=dirfd)
        return tmp

    monkeypatch.setattr(safepath, "_temporary", temporary)
    before = snapshot(world.decoy)
    with contextlib.suppress(Exception):
        world.run()
    # dockyard wrote the content of resolv.conf into decoy/precious
    assert victim.read_bytes() == PRECIOUS, victim.read_bytes()
    assert decoy_changed(before, snapshot(world.decoy)) == []


def test_a_real_attacker_racing_with_inotify_wins(tmp_path: Path) -> None:
    """The same, raced for real by another process watching the root with inotify."""
    for n in range(20):
        world = make_world(fresh(tmp_path, n))
        victim = world.decoy / "precious"
        before = snapshot(world.decoy)
        with Attacker(HARDLINK_SWAPPER, world.root, victim), contextlib.suppress(Exception):
            world.run()
        changed = decoy_changed(before, snapshot(world.decoy))
        assert changed == [], (
            f"attempt {n + 1}: outside the root, {changed} changed: "
            f"{victim.read_bytes()!r}, mode {victim.stat().st_mode & 0o7777:04o}"
        )
