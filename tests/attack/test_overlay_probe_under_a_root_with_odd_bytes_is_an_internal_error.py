"""The overlay probe's test mount moved from the `mount` program to mount(2) through ctypes.
The target went through os.fsencode, but the options (lowerdir=…,upperdir=…,workdir=…, the
same paths) through str.encode: a Docker root whose real path holds bytes that are not UTF-8
(the spec names /srv/docker, a symlink to a disk mounted under such a name; dockyard uses a
root's real path, as Docker does) raised UnicodeEncodeError, not an OSError: the probe did not
answer and the run ended in an internal error. `mount` took those bytes as they are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.reconcilers.storage.probes import filesystems, probe
from dockyard.state.host import real_root

pytestmark = pytest.mark.root


def test_overlay_probes_a_root_whose_real_path_is_not_utf8(tmp_path: Path) -> None:
    if "overlay" not in filesystems(Path("/proc")):
        pytest.skip("no overlay in this kernel")
    disk = tmp_path / os.fsdecode(b"disk-\xff")
    (disk / "docker").mkdir(parents=True)
    (tmp_path / "srv").symlink_to(disk)
    root = real_root(tmp_path / "srv" / "docker")
    assert os.fsencode(root).endswith(b"/disk-\xff/docker")
    before = Path("/proc/self/mountinfo").read_text()
    found = probe("overlay2", root, Path("/proc"))
    assert found.verdict == "ok", found.reason
    assert found.reason.startswith(f"overlay mounts on {root} (")
    assert Path("/proc/self/mountinfo").read_text() == before
    assert list((disk / "docker").iterdir()) == []
