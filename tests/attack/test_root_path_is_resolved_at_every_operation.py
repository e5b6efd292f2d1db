"""README/safepath: "The root itself may be a symlink: it is resolved once, as Docker did", and
"a path cannot be swapped between check and use". But a Tree keeps only the root's *path*: every
operation opens `self.top` by name again, following symlinks. Whoever can write in the root's
parent directory swaps the root for a symlink mid-run (after observe), and dockyard's later
creates, writes, renames and chmods land in the symlink's target, outside the root."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dockyard.reconcilers.storage import Storage
from tests.attack.attackers import decoy_changed
from tests.hostile_world import make_world, snapshot


def test_a_root_swapped_for_a_symlink_mid_run_is_not_followed(tmp_path: Path, monkeypatch) -> None:
    world = make_world(tmp_path)
    elsewhere = world.decoy / "elsewhere"
    elsewhere.mkdir()
    real = Storage.apply

    def apply(self, change, host):  # the run has observed; the root's parent is swapped
        if not world.root.is_symlink():
            os.rename(world.root, tmp_path / "docker.moved")
            os.symlink(elsewhere, world.root)
        return real(self, change, host)

    monkeypatch.setattr(Storage, "apply", apply)
    before = snapshot(world.decoy)
    with contextlib.suppress(Exception):
        world.run()
    assert decoy_changed(before, snapshot(world.decoy)) == []
