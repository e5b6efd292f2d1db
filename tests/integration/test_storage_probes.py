"""Storage probes on this machine's real kernel: overlay mounts for real, btrfs and
devicemapper answer for real; only aufs, which this kernel cannot load, is faked."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.reconcilers.storage.probes import filesystems, fs_type, probe
from tests.storage_world import fake_proc

pytestmark = pytest.mark.root


def test_overlay2_probe_mounts_for_real_and_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "var" / "lib" / "docker"
    if "overlay" not in filesystems(Path("/proc")):
        pytest.skip("no overlay in this kernel")
    found = probe("overlay2", root, Path("/proc"))
    assert found.verdict == "ok", found.reason
    assert "with d_type" in found.reason
    assert list(tmp_path.iterdir()) == []


def test_overlay2_without_the_filesystem_is_not_supported(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "filesystems").write_text("nodev\tproc\n\text4\n")
    found = probe("overlay2", tmp_path, proc)
    assert (found.verdict, found.reason) == ("not supported", "no overlay in /proc/filesystems")


def test_btrfs_probe_reads_the_backing_filesystem(tmp_path: Path) -> None:
    found = probe("btrfs", tmp_path / "docker", Path("/proc"))
    kind = fs_type(tmp_path)
    if kind == "btrfs":
        assert found.verdict == "ok"
    else:
        assert (found.verdict, found.reason) == (
            "not supported",
            f"{tmp_path} is on {kind}, not btrfs",
        )


def test_devicemapper_and_vfs(tmp_path: Path) -> None:
    assert probe("vfs", tmp_path, Path("/proc")).verdict == "ok"
    dm = probe("devicemapper", tmp_path, Path("/proc"))
    if not Path("/sys/module/dm_thin_pool").exists():
        assert dm.verdict == "prerequisites missing"


def test_aufs_probe_follows_proc_filesystems(tmp_path: Path) -> None:
    assert probe("aufs", tmp_path, fake_proc(tmp_path / "a", with_aufs=True)).verdict == "ok"
    without = probe("aufs", tmp_path, fake_proc(tmp_path / "b", with_aufs=False))
    assert (without.verdict, without.reason) == ("not supported", "no aufs in /proc/filesystems")
