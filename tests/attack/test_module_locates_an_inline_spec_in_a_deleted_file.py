"""Through a dockyard program (a host whose Python cannot import dockyard), the module wrote an
inline `spec:` to a file in its temporary directory, and a bad spec's problems named that file
(`/root/.ansible/tmp/ansible-moduletmp-.../spec.yaml:4:14: ...`), gone when the task ends;
in process they name `<inline spec>`. The file was written as ASCII JSON, so a character
beyond the BMP went in as two surrogate escapes, which YAML reads as two lone surrogates: the
problem lost its line and column (and the value its character)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from devtools.fleet import REPO, fleet
from tests.integration.test_install import clean_python

pytestmark = pytest.mark.root

LOCATED = re.compile(r"<inline spec>:\d+:\d+: ")


def test_an_inline_specs_problems_name_the_inline_spec(tmp_path: Path) -> None:
    program = tmp_path / "reconcile"
    program.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m dockyard "$@"\n')
    program.chmod(0o755)
    bad = {"version": 1, "network": {"bridge": {"mtu": 10}}, "dns": {"search": ["x\U0001f600.t"]}}
    task = {
        "dockyard.host.reconcile": {"spec": bad, "executable": str(program)},
        "environment": "{{ dockyard_environment }}",
    }
    playbook = tmp_path / "task.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [task]}]))
    with fleet(1, python=clean_python(), prefix="dky-a16i") as one:
        result = one.ansible.playbook(one.inventory, playbook).results["h000"]
    assert result["msg"] == "the spec is not valid"
    problems = result["spec_errors"]
    assert len(problems) == 2, problems
    [mtu] = [p for p in problems if "network.bridge.mtu" in p]
    [search] = [p for p in problems if "dns.search[0]" in p]
    assert LOCATED.match(mtu), mtu
    assert mtu.endswith("network.bridge.mtu: must be auto or a number from 68 to 65535, got 10")
    assert LOCATED.match(search), search
    assert search.split(": ", 1)[1].startswith("dns.search[0]: must be a domain name")
    assert search.endswith("got 'x\U0001f600.t'"), search
