"""Storage probes on this machine's real kernel: overlay mounts for real, btrfs and
devicemapper answer for real; only aufs, which this kernel cannot load, is faked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.sandbox import Sandbox
from dockyard.reconcilers.storage import KEPT, kept_probe
from dockyard.reconcilers.storage.probes import filesystems, fs_type, probe, try_mount
from dockyard.state.bootfacts import NAME
from dockyard.state.host import Host
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


def test_a_test_mount_is_unmounted_and_a_failed_one_says_why(tmp_path: Path) -> None:
    """The probe mounts by the system call, not by `mount`: it is undone, and a refusal
    carries the kernel's reason."""
    if "overlay" not in filesystems(Path("/proc")):
        pytest.skip("no overlay in this kernel")
    dirs = {name: tmp_path / name for name in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        d.mkdir()
    before = Path("/proc/self/mountinfo").read_text()
    options = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    assert try_mount("overlay", dirs["merged"], options) is None
    assert Path("/proc/self/mountinfo").read_text() == before
    missing = options.replace(str(dirs["lower"]), str(tmp_path / "gone"))
    assert try_mount("overlay", dirs["merged"], missing) == (
        f"{dirs['merged']}: No such file or directory"
    )
    assert Path("/proc/self/mountinfo").read_text() == before


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


# Run in a mount namespace of its own (unshare -m): its mounts go when it ends.
IN_A_MOUNT_NAMESPACE = """
import json, subprocess, sys
from pathlib import Path
from dockyard.reconcilers.storage.probes import fs_type, probe
image, ext, tmp, no_mountinfo = map(Path, sys.argv[1:])
subprocess.run(["mount", "-o", "loop", str(image), str(ext)], check=True)
subprocess.run(["mount", "-t", "tmpfs", "dockyard-test", str(tmp)], check=True)
print(json.dumps({
    "ext": fs_type(ext),
    "tmp": fs_type(tmp),
    "ext without a mount table": fs_type(ext, no_mountinfo),
    "btrfs probe": probe("btrfs", ext / "docker", Path("/proc")).reason,
}))
"""


def test_the_backing_filesystem_is_named_by_its_real_type(tmp_path: Path) -> None:
    """An ext2 image and a tmpfs, mounted for real: statfs's magic, and for ext the mount
    table, name each; `stat -f` called both ext2 and ext4 "ext2/ext3"."""
    if shutil.which("mkfs.ext2") is None or not Path("/dev/loop-control").exists():
        pytest.skip("needs mkfs.ext2 (e2fsprogs) and loop devices")
    image = tmp_path / "ext2.img"
    with image.open("wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["mkfs.ext2", "-q", "-F", str(image)], check=True)
    ext, tmp, proc = tmp_path / "ext", tmp_path / "tmp", tmp_path / "proc"
    for d in (ext, tmp, proc):
        d.mkdir()
    argv = [sys.executable, "-c", IN_A_MOUNT_NAMESPACE, str(image), str(ext), str(tmp), str(proc)]
    out = subprocess.run(
        ["unshare", "-m", "--propagation", "private", *argv],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert json.loads(out.stdout) == {
        "ext": "ext2",
        "tmp": "tmpfs",
        "ext without a mount table": "ext2/ext3/ext4",
        "btrfs probe": f"{ext} is on ext2, not btrfs",
    }


def _proc(base: Path, boot_id: str, overlay: bool = True) -> Path:
    """/proc as the kept probe reads it: filesystems, the boot, the kernel release."""
    proc = base / "proc"
    (proc / "sys/kernel/random").mkdir(parents=True, exist_ok=True)
    names = ["nodev\tproc", "\text4"] + (["nodev\toverlay"] if overlay else [])
    (proc / "filesystems").write_text("\n".join(names) + "\n")
    (proc / "sys/kernel/random/boot_id").write_text(boot_id + "\n")
    (proc / "sys/kernel/osrelease").write_text(Path("/proc/sys/kernel/osrelease").read_text())
    return proc


def _host(tmp_path: Path, proc: Path) -> Host:
    (tmp_path / "state").mkdir(exist_ok=True)
    return Host(root=tmp_path / "var/lib/docker", state_dir=tmp_path / "state", proc=proc)


def test_a_test_mount_that_succeeded_is_not_made_again_this_boot(tmp_path: Path) -> None:
    if "overlay" not in filesystems(Path("/proc")):
        pytest.skip("no overlay in this kernel")
    proc = _proc(tmp_path, "boot-1")
    first = _host(tmp_path, proc)
    found = kept_probe("overlay2", first)
    assert found.verdict == "ok" and not found.reason.endswith(KEPT)
    first.save_boot_facts()
    kept = json.loads((tmp_path / "state" / NAME).read_text())["facts"]
    assert kept["storage probe overlay2"]["key"]["boot_id"] == "boot-1"

    again = kept_probe("overlay2", _host(tmp_path, proc))
    assert (again.verdict, again.reason) == ("ok", found.reason + KEPT)

    # another boot: the probe mounts again, and the run that applies keeps the new key
    rebooted = _host(tmp_path, _proc(tmp_path, "boot-2"))
    anew = kept_probe("overlay2", rebooted)
    assert (anew.verdict, anew.reason) == ("ok", found.reason)
    rebooted.save_boot_facts()
    kept = json.loads((tmp_path / "state" / NAME).read_text())["facts"]
    assert kept["storage probe overlay2"]["key"]["boot_id"] == "boot-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proc", "state"]


def test_without_overlay_in_the_kernel_a_kept_success_is_not_used(tmp_path: Path) -> None:
    if "overlay" not in filesystems(Path("/proc")):
        pytest.skip("no overlay in this kernel")
    host = _host(tmp_path, _proc(tmp_path, "boot-1"))
    assert kept_probe("overlay2", host).verdict == "ok"
    host.save_boot_facts()
    gone = _host(tmp_path, _proc(tmp_path, "boot-1", overlay=False))
    found = kept_probe("overlay2", gone)
    assert (found.verdict, found.reason) == ("not supported", "no overlay in /proc/filesystems")
    assert not gone.boot_facts.dirty  # a failure is never kept


def test_plan_keeps_nothing_and_apply_keeps_the_probe(box: Sandbox) -> None:
    if "overlay" not in filesystems(Path("/proc")):
        pytest.skip("no overlay in this kernel")
    state = Path(box.spec["state_dir"])
    assert box.reconcile("plan", "SPEC").returncode == 0
    assert not state.exists()
    assert box.reconcile("SPEC").returncode == 0
    kept = json.loads((state / NAME).read_text())["facts"]["storage probe overlay"]
    assert kept["key"]["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    shown = json.loads(box.reconcile("show", "SPEC", "-o", "json", check=True).stdout)
    probes = {p["driver"]: p for p in shown["observed"]["storage"]["probes"]}
    assert probes["overlay"]["verdict"] == "ok"
    assert probes["overlay"]["reason"].endswith(KEPT)
