"""The collection's documentation, as ansible-doc renders it from the source tree: the module's
options are exactly those its code accepts, and the role documents every default it has."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import yaml

from devtools.fleet import COLLECTION, REPO, tool

MODULE = "dockyard.host.reconcile"
ROLE = "dockyard.host.install"


def ansible_doc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "integrations/ansible"),
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [tool("ansible-doc"), *args], capture_output=True, text=True, env=env, check=True
    )


def documented(*args: str) -> Any:
    return json.loads(ansible_doc("--json", *args).stdout)


def test_the_module_documents_the_options_its_code_accepts() -> None:
    doc = documented(MODULE)[MODULE]
    options = doc["doc"]["options"]
    assert set(options) == {"spec", "path", "state", "force_dns", "lock_timeout", "executable"}
    assert options["state"]["choices"] == ["present", "absent"]
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert doc["doc"]["attributes"]["diff_mode"]["support"] == "full"
    assert {"plan", "drift", "notes", "spec_errors"} <= set(doc["return"])
    assert "format_version" in doc["return"]["plan"]["contains"]
    for example in yaml.safe_load(doc["examples"]):
        assert MODULE in example or "ansible.builtin.debug" in example


def test_the_module_and_role_render_as_text() -> None:
    assert "OPTIONS" in ansible_doc(MODULE).stdout
    assert "dockyard_zipapp" in ansible_doc("-t", "role", ROLE).stdout


def test_the_role_documents_every_default() -> None:
    spec = documented("-t", "role", ROLE)[ROLE]["entry_points"]["main"]["options"]
    defaults = yaml.safe_load((COLLECTION / "roles/install/defaults/main.yml").read_text())
    assert set(spec) == set(defaults)
    for name, value in defaults.items():
        assert spec[name]["default"] == value, name
