"""The migration of a legacy graph into vfs snapshots, on each kind of filesystem: how long it
takes and how much disk it adds, beside `cp -a` of the same legacy graph (one copy of every
layer's own files, the least any copying migration writes).

A representative chain: a base of BENCH_VFS_FILES files (sizes from 25 B to 256 KiB, ~140 MiB
by default), three layers that change, add and white out files, a container with files of its
own. Each of the six snapshots (four images, the container's init layer and the container)
holds the base, so a migration by copies alone writes about six times the base, as Docker's
own vfs driver did. `cp` shares data by reflink itself where it can (coreutils 9)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.scratchfs import Unavailable, mounted, used
from tests.storage_world import converge, fake_proc, spec_text
from tests.vfs_world import Layer, write_legacy_root

FILES = int(os.environ.get("BENCH_VFS_FILES", "3000"))
MiB = 1 << 20


def chain() -> tuple[list[Layer], Layer]:
    rng = random.Random(14)
    sizes = [100, 1000, 4000, 20_000, 100_000, 1 << 20]
    base: Layer = {
        f"usr/d{i % 50}/f{i}": ("file", rng.randbytes(rng.choice(sizes) // 4), 0o644)
        for i in range(FILES)
    }
    layers: list[Layer] = [base]
    for n in range(1, 4):
        layer: Layer = {
            f"usr/d{i % 50}/f{i}": ("file", b"changed %d" % n, 0o644) for i in range(n, FILES, 97)
        }
        layer.update(
            {f"usr/d{i % 50}/.wh.f{i}": ("file", b"", 0o444) for i in range(n + 1, FILES, 211)}
        )
        layer.update({f"opt/l{n}/g{i}": ("file", rng.randbytes(2000), 0o644) for i in range(200)})
        layers.append(layer)
    container: Layer = {f"var/log/c{i}": ("file", rng.randbytes(5000), 0o644) for i in range(100)}
    return layers, container


def measure(where: Path) -> tuple[float, int, float, int]:
    """(seconds, bytes added) of the migration, and of `cp -a` of the legacy graph."""
    layers, container = chain()
    write_legacy_root(where / "docker", layers, container)
    before = used(where)
    began = time.perf_counter()
    subprocess.run(["cp", "-a", str(where / "docker" / "graph"), str(where / "copy")], check=True)
    copy_time = time.perf_counter() - began
    copy_bytes = used(where) - before
    subprocess.run(["rm", "-rf", str(where / "copy")], check=True)
    (where / "spec.yaml").write_text(spec_text(where, "vfs"))
    before = used(where)
    began = time.perf_counter()
    outcome = converge(where / "spec.yaml", fake_proc(where, with_aufs=False))
    took = time.perf_counter() - began
    if not outcome.ok:
        raise SystemExit(f"migration failed: {outcome.error}")
    return took, used(where) - before, copy_time, copy_bytes


def main() -> int:
    if os.geteuid() != 0:
        print("the vfs benchmark mounts filesystems and needs root", file=sys.stderr)
        return 1
    legacy = sum(len(s[1]) for s in chain()[0][0].values() if isinstance(s[1], bytes))
    print(
        f"\nvfs migration: base of {FILES:,} files ({legacy / MiB:.0f} MiB), 3 layers, 2 containers"
    )
    print(
        f"{'filesystem':<34}{'migration':>10}{'disk added':>12}{'cp -a graph':>13}{'its disk':>10}"
    )
    kinds = [("tmpfs", 1024 * MiB), ("btrfs", 1024 * MiB), ("xfs", 1024 * MiB), ("disk", 0)]
    for kind, size in kinds:
        with tempfile.TemporaryDirectory(prefix="dky-vfs-bench", dir="/var/tmp") as tmp:
            try:
                if kind == "disk":
                    fs = os.statvfs(tmp)
                    label = f"this machine's disk ({fs.f_bsize} B blocks)"
                    row = measure(Path(tmp))
                else:
                    label = kind
                    with mounted(kind, Path(tmp), size) as mnt:
                        row = measure(mnt)
            except Unavailable as e:
                print(f"{kind:<34}skipped: {e}")
                continue
        took, added, copy_time, copy_bytes = row
        print(
            f"{label:<34}{took:>9.2f}s{added / MiB:>10.1f}MiB"
            f"{copy_time:>12.2f}s{copy_bytes / MiB:>8.1f}MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
