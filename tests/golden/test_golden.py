"""Golden plans: spec.yaml + observed.yaml -> plan.yaml, for every reconciler, no host needed.

Each case is a directory tests/golden/cases/<reconciler>/<case>/. observed.yaml maps reconciler
names to what they observed. To rewrite the expected plans after an intended change:
UPDATE_GOLDEN=1 pytest tests/golden, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from dockyard import engine
from dockyard.reconcilers import default_set
from dockyard.reconcilers.base import Seen
from dockyard.spec import load

CASES = Path(__file__).parent / "cases"
ALL = sorted(p for p in CASES.glob("*/*") if p.is_dir())


def planned(case: Path) -> dict[str, Any]:
    reconciler_name = case.parent.name
    spec = load(case / "spec.yaml")
    observed = yaml.safe_load((case / "observed.yaml").read_text())
    reconcilers = {r.name: r for r in engine.order(default_set())}
    seen = Seen()
    for name, data in observed.items():
        seen.add(name, TypeAdapter(reconcilers[name].observation).validate_python(data))
    target = reconcilers[reconciler_name]
    return {
        "changes": [c.to_json() for c in target.diff(spec, seen)],
        "notes": [n.to_json() for n in target.check(spec, seen)],
    }


def test_every_reconciler_has_golden_cases() -> None:
    assert {r.name for r in default_set()} <= {p.parent.name for p in ALL}


@pytest.mark.parametrize("case", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_plan(case: Path) -> None:
    got = planned(case)
    expected_file = case / "plan.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(yaml.safe_dump(got, sort_keys=False))
    assert got == yaml.safe_load(expected_file.read_text())
