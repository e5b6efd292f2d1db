"""`state: absent` (and `reconcile down`) on a host dockyard never prepared made dockyard's
state directory and reported it: the task was `changed` ("applied and verified: 1 to create"),
check mode said the host would change, and `down --detailed-exitcode` exited 2, although there
was nothing to take down. A decommissioning playbook over a fleet where some hosts were never
prepared reported changes on those and left /var/lib/dockyard behind. Where there is nothing
to take down, `down` now makes nothing and says so; the second teardown was already quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.fleet import fleet
from devtools.sandbox import Sandbox

pytestmark = pytest.mark.root


def test_down_on_a_fresh_host_makes_nothing(box: Sandbox) -> None:
    state_dir = Path(box.spec["state_dir"])
    planned = box.reconcile("down", "SPEC", "--dry-run", "-o", "json", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stderr
    doc = json.loads(planned.stdout)
    assert doc["changes"] == [] and doc["pending"] is False
    text = box.reconcile("down", "SPEC", "--dry-run")
    assert text.stdout == "Nothing of dockyard's is left on this host.\n", text.stdout
    down = box.reconcile("down", "SPEC", "-o", "json", "--detailed-exitcode")
    assert down.returncode == 0, down.stderr
    doc = json.loads(down.stdout)
    assert doc["applied"] == [] and doc["converged"] is True
    assert not state_dir.exists()


def test_absent_on_a_fresh_host_is_not_changed() -> None:
    with fleet(1, prefix="dky-a16d") as one:
        state_dir = Path(one.members[0].spec["state_dir"])
        absent = {"dockyard_state": "absent"}
        check = one.playbook("--check", extra_vars=absent)
        run = one.playbook(extra_vars=absent)
        assert not state_dir.exists()
    assert check.returncode == run.returncode == 0, run.output
    assert check.changed() == run.changed() == set()
    assert run.results["h000"]["msg"] == "nothing to take down"
