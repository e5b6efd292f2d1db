"""Claim: "no read can hang or exhaust memory"; reads are capped. exec's observe hashes
`<root>/init/dockerinit-<version>` to the end (`_digest` loops os.read until EOF) with no size
cap, on every plan, apply, verify and watch pass. A sparse file costs its planter nothing: at
the ~230 MB/s measured here, 1 TiB keeps `plan` busy for over an hour (16 TiB, ext4's limit,
most of a day), and `plan` looks hung."""

from __future__ import annotations

from pathlib import Path

from tests.attack.attackers import plan_finishes
from tests.hostile_world import make_world


def test_plan_with_a_huge_sparse_dockerinit_finishes(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    (world.root / "init").mkdir()
    with open(world.root / "init" / "dockerinit-1.2.0", "wb") as f:
        f.truncate(1 << 40)  # 1 TiB, no blocks used
    plan_finishes(tmp_path, "a huge sparse dockerinit")
