"""The module, run through a dockyard program (a host whose Python cannot import dockyard),
read a run that printed no JSON document as a bad spec whenever `reconcile validate` also
failed, and took validate's text on stderr, line by line, as the spec's problems: a wrong
`executable:` (or a program that cannot start at all) failed the task with "the spec is not
valid" and no problem, or with the program's own complaint dressed as one. It now asks
`validate -o json` for the problems and reports a program that gives no document as such."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.fleet import Fleet, fleet
from tests.integration.test_install import clean_python

pytestmark = pytest.mark.root

NOT_DOCKYARD = "#!/bin/sh\necho 'cannot start: no space left on device' >&2\nexit 3\n"


def run_task(one: Fleet, tmp_path: Path, args: dict[str, Any]) -> dict[str, Any]:
    task = {"dockyard.host.reconcile": args, "environment": "{{ dockyard_environment }}"}
    playbook = tmp_path / "task.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [task]}]))
    return one.ansible.playbook(one.inventory, playbook).results["h000"]


def test_a_program_that_gives_no_document_is_not_called_a_bad_spec(tmp_path: Path) -> None:
    program = tmp_path / "reconcile"
    program.write_text(NOT_DOCKYARD)
    program.chmod(0o755)
    with fleet(1, python=clean_python(), prefix="dky-a16p") as one:
        spec = one.members[0].spec
        broken = run_task(one, tmp_path, {"spec": spec, "executable": str(program)})
        false = run_task(one, tmp_path, {"spec": spec, "executable": "/bin/false"})
    assert broken["failed"] is True and broken["changed"] is False
    assert "spec_errors" not in broken, broken
    assert broken["msg"] == (
        f"{program} gave no dockyard document (exit 3): cannot start: no space left on device"
    )
    assert false["failed"] is True and "spec_errors" not in false, false
    assert false["msg"] == "/bin/false gave no dockyard document (exit 1)"
