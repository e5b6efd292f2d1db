"""dockyard.api against the real kernel: run in a fresh namespace (never in this process,
which is in the machine's own), its documents are those of `reconcile ... -o json`."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from devtools.sandbox import Sandbox

pytestmark = pytest.mark.root

CALL = """
import json, sys
from dockyard import api
spec = api.load(sys.argv[1])
how = sys.argv[2]
if how == "plan":
    doc = api.plan(spec)
elif how == "down-plan":
    doc = api.plan(spec, teardown=True)
else:
    doc = api.apply(spec, teardown=how == "down")
print(json.dumps(doc))
"""


def call(box: Sandbox, how: str) -> dict[str, Any]:
    out = box.run([sys.executable, "-c", CALL, str(box.spec_path), how], check=True)
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def cli(box: Sandbox, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(box.reconcile(*args, "-o", "json").stdout)
    return doc


def test_the_api_gives_the_documents_of_the_command(box: Sandbox) -> None:
    assert call(box, "plan") == cli(box, "plan", "SPEC")
    applied = call(box, "apply")
    assert applied["converged"] is True and applied["error"] is None
    assert applied["applied"] == applied["changes"] != []
    assert call(box, "apply") == cli(box, "apply", "SPEC")
    assert call(box, "down-plan") == cli(box, "down", "SPEC", "--dry-run")
    down = call(box, "down")
    assert down["command"] == "down" and down["converged"] is True
    assert down["applied"] != []
    assert call(box, "down")["applied"] == []


def test_a_failed_check_changes_nothing(box: Sandbox) -> None:
    box.write_spec({"version": 1, "preflight": {"min_kernel": "99.0"}})
    doc = call(box, "apply")
    assert doc["converged"] is False
    assert doc["error"].startswith("nothing was changed: preflight: ")
    assert not box.path("var/lib/dockyard").exists()
