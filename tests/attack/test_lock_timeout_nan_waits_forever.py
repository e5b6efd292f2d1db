"""`reconcile --lock-timeout nan` once waited forever (every comparison with NaN is false);
the command line refuses it since, but the module's `lock_timeout` (a float: `nan`, `inf`,
`-5` all accepted) and `dockyard.api.apply` took any number and handed it to the lock: NaN or
infinity waited forever on a held lock. Both now refuse what the command line refuses, before
anything on the host is touched, through the Python API and through a program alike."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import yaml

from devtools.fleet import REPO, fleet
from dockyard import api
from dockyard.errors import DockyardError

BAD = ("nan", "inf", "-5", "86401")


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -5.0, 86401.0])
def test_the_api_refuses_a_lock_timeout_the_command_line_refuses(timeout: float) -> None:
    """The check `api.apply` makes first (the module's runs below prove it comes first)."""
    with pytest.raises(DockyardError) as e:
        api.checked_lock_timeout(timeout)
    assert str(e.value) == f"lock_timeout: a number of seconds from 0 to 86400, not {timeout:g}"


def test_the_api_takes_the_command_lines_range() -> None:
    assert [api.checked_lock_timeout(t) for t in (0, 0.5, 86400)] == [0.0, 0.5, 86400.0]


@pytest.mark.root
def test_the_module_refuses_them_before_it_runs(tmp_path: Path) -> None:
    """In process and through a program, each bad value fails the task with the same words,
    and the host is not touched (not even dockyard's state directory is made)."""
    program = tmp_path / "reconcile"
    program.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m dockyard "$@"\n')
    program.chmod(0o755)
    cases = [{"timeout": b, "executable": e} for b in BAD for e in ("", str(program))]
    task = {
        "dockyard.host.reconcile": {
            "spec": "{{ dockyard_spec }}",
            "lock_timeout": "{{ item.timeout }}",
            "executable": "{{ item.executable or omit }}",
        },
        "environment": "{{ dockyard_environment }}",
        "loop": cases,
        "ignore_errors": True,
    }
    playbook = tmp_path / "task.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [task]}]))
    with fleet(1, prefix="dky-a16l") as one:
        run = one.ansible.playbook(one.inventory, playbook)
        state_dir = Path(one.members[0].spec["state_dir"])
        assert not state_dir.exists()
    results = run.results["h000"]["results"]
    assert len(results) == len(cases), run.output
    for case, result in zip(cases, results, strict=True):
        words = f"lock_timeout: a number of seconds from 0 to 86400, not {float(case['timeout']):g}"
        assert result["failed"] is True and result["msg"] == words, (case, result)
