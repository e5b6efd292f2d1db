"""dockyard builds its spec models without pydantic's plugins (dockyard/spec/plugins.py: "a
plugin installed beside dockyard would watch or alter the validation of every spec"). But the
stand-in loader was put in place only when pydantic had not loaded its own yet: a program
that built one model of its own before importing dockyard (dockyard.api used as a library,
or any pydantic user) had pydantic's real loader loaded, and every installed plugin was handed
dockyard's spec models. Whether a plugin watched the spec depended on import order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]

# A pydantic plugin as pip installs one: a module and its entry point in the `pydantic` group.
PLUGIN = """
import os

class Watcher:
    def new_schema_validator(self, schema, schema_type, path, kind, config, settings):
        with open(os.environ["WATCHED"], "a") as log:
            log.write(f"{path.module}.{path.name}\\n")
        return None, None, None

plugin = Watcher()
"""

EMBEDDING = """
import pydantic

class Before(pydantic.BaseModel):  # the program's own model, built first
    x: int

import dockyard.spec

dockyard.spec.load("examples/docker-default.yaml")

class After(pydantic.BaseModel):  # and one built afterwards
    y: int
"""


def install_plugin(site: Path) -> None:
    (site / "watcher.py").write_text(PLUGIN)
    info = site / "watcher-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: watcher\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pydantic]\nwatch = watcher:plugin\n")


def test_a_plugin_sees_the_programs_models_and_never_the_spec(tmp_path: Path) -> None:
    install_plugin(tmp_path)
    log = tmp_path / "watched"
    subprocess.run(
        [sys.executable, "-c", EMBEDDING],
        cwd=REPO,
        env={"PYTHONPATH": f"{REPO}:{tmp_path}", "WATCHED": str(log), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert log.read_text() == "__main__.Before\n__main__.After\n"
