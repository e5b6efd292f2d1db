"""The module's notes and the README said that beside a watch (which holds dockyard's lock for
its whole life) the module's converge "waits lock_timeout seconds and fails"; it fails at once,
naming the watch, in process and through a program (a watch never lets go, so waiting would
only delay the failure). The promise that check mode works beside a watch had no test. Both
are tested here and the words say what happens."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.fleet import COLLECTION, REPO, Fleet, fleet
from tests.integration.watching import Watcher

pytestmark = pytest.mark.root

HELD = re.compile(r"(error: )?\S+/lock is held by a watch \(pid \d+\), which never lets go; ")


def run_task(one: Fleet, tmp_path: Path, args: dict[str, Any], *options: str) -> dict[str, Any]:
    task = {
        "dockyard.host.reconcile": {"spec": "{{ dockyard_spec }}", **args},
        "environment": "{{ dockyard_environment }}",
        "timeout": 120,  # a bound: a module that waited for the lock would be stopped here
    }
    playbook = tmp_path / "task.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [task]}]))
    return one.ansible.playbook(one.inventory, playbook, *options).results["h000"]


def test_beside_a_watch_check_mode_works_and_a_converge_fails_at_once(tmp_path: Path) -> None:
    program = tmp_path / "reconcile"
    program.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m dockyard "$@"\n')
    program.chmod(0o755)
    with fleet(1, prefix="dky-a16w") as one:
        watcher = Watcher(one.members[0].box)
        try:
            watcher.ready()
            long = {"lock_timeout": 86400}
            check = run_task(one, tmp_path, {}, "--check")
            in_process = run_task(one, tmp_path, long)
            through_program = run_task(one, tmp_path, {**long, "executable": str(program)})
        finally:
            watcher.stop()
    assert check["failed"] is False and check["changed"] is False, check
    assert check["msg"] == "the host matches the spec"
    for result in (in_process, through_program):
        assert result["failed"] is True and result["changed"] is False, result
        assert HELD.match(result["msg"]), result["msg"]


def test_the_words_say_it_fails_at_once() -> None:
    module = (COLLECTION / "plugins/modules/reconcile.py").read_text()
    readme = (REPO / "README.md").read_text()
    for text in (module, readme):
        flat = " ".join(text.split())
        assert "waits O(lock_timeout) seconds and fails" not in flat
        assert "would wait `lock_timeout` and fail" not in flat
    assert "converging with this module fails at once, naming the watch" in " ".join(module.split())
    assert "the module's apply fails at once, naming the watch" in " ".join(readme.split())
