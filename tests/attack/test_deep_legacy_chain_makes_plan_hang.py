"""A crafted legacy graph: one chain of 2,000 images (2,000 empty layer/ directories and 2,000
small json files, a few hundred KiB in all). migration.unusable() walks each image's ancestry
keeping the ids it has seen in a *list* (`current in seen`), so checking every image costs
O(n^3); plan_steps runs it three times per plan (diff, check, and tagstore's moves_tags), and
apply plans twice (plan, verify). 1,000 images took 18 s here, 2,000 take minutes, 5,000 most of
an hour: `plan` and every watch pass look hung."""

from __future__ import annotations

import json
from pathlib import Path

from tests.attack.attackers import plan_finishes
from tests.hostile_world import make_world

DEPTH = 2000


def test_plan_of_a_deep_legacy_chain_finishes(tmp_path: Path) -> None:
    world = make_world(tmp_path, legacy=False)
    for k in range(DEPTH):
        image = world.root / "graph" / f"i{k:06d}"
        (image / "layer").mkdir(parents=True)
        meta = {"id": image.name, **({"parent": f"i{k - 1:06d}"} if k else {})}
        (image / "json").write_text(json.dumps(meta))
    plan_finishes(tmp_path, f"{DEPTH} chained images")
