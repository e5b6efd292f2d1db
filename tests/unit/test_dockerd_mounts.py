"""devtools/dockerd.py: the cgroup mounts rebuilt inside dockerd's mount namespace, and the test
image, checked without root."""

from __future__ import annotations

import io
import tarfile

from devtools.dockerd import BUSYBOX, Mount, busybox_tarball, cgroup_mounts

HYBRID = """\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 30 0:40 / /sys/fs/cgroupx rw - tmpfs tmpfs rw
"""

UNIFIED = """\
35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""


def test_hybrid_hierarchies_are_mounted_again_parents_first_with_their_own_options() -> None:
    assert cgroup_mounts(HYBRID) == [
        Mount("tmpfs", "tmpfs", "/sys/fs/cgroup", "mode=755"),
        Mount("cgroup", "cgroup", "/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct"),
        Mount("cgroup", "cgroup", "/sys/fs/cgroup/memory", "memory"),
        # A named hierarchy without controllers: "none", or the kernel binds them all to it.
        Mount("cgroup", "cgroup", "/sys/fs/cgroup/systemd", "none,xattr,name=systemd"),
        # cgroup2's options are the whole machine's: the same ones, or they would change.
        Mount("cgroup2", "cgroup2", "/sys/fs/cgroup/unified", "nsdelegate"),
    ]
    assert Mount("cgroup", "cgroup", "/sys/fs/cgroup/memory", "memory").argv() == [
        "mount",
        "-t",
        "cgroup",
        "-o",
        "memory",
        "cgroup",
        "/sys/fs/cgroup/memory",
    ]


def test_a_unified_hierarchy_is_one_mount() -> None:
    assert cgroup_mounts(UNIFIED) == [
        Mount("cgroup2", "cgroup2", "/sys/fs/cgroup", "nsdelegate,memory_recursiveprot")
    ]


def test_the_image_is_busybox_with_the_applets_the_scenarios_use() -> None:
    with tarfile.open(fileobj=io.BytesIO(busybox_tarball())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        binary = tar.extractfile("bin/busybox")
        assert binary is not None
        with open(BUSYBOX, "rb") as f:
            assert binary.read() == f.read()
    for applet in ("bin/sh", "usr/bin/nc", "usr/sbin/httpd", "bin/ping", "usr/bin/wget"):
        assert members[applet].issym() and members[applet].linkname == "/bin/busybox"
    assert members["tmp"].mode == 0o1777
    assert members["www/index.html"].isfile()
