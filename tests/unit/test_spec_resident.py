"""The watch's spec, read by a child process: the same spec, or the same located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import SpecError
from dockyard.spec import load
from dockyard.spec.resident import compact, load_resident

PORTS = "".join(
    f"    - {{host_ip: 127.0.0.1, host_port: {n}, container_ip: 172.17.0.2, container_port: 80}}\n"
    for n in range(1000, 1200)
)


def test_the_child_reads_the_same_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(f"version: 1\nnetwork:\n  icc: false\n  published_ports:\n{PORTS}")
    here = load(path)
    monkeypatch.setattr("dockyard.spec.resident.load", None)  # any use here raises
    got = load_resident(str(path))
    assert got == here
    ips = {id(p["container_ip"]) for p in got.network.published_ports}
    assert len(ips) == 1  # shared: made by the child's compact()


def test_the_child_runs_no_module_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "spec.yaml").write_text("version: 1\n")
    for module in ("yaml_rs", "yaml", "pydantic"):
        (tmp_path / f"{module}.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("dockyard.spec.resident.load", None)
    assert load_resident("spec.yaml") == load(tmp_path / "spec.yaml")
    assert not (tmp_path / "ran").exists()


def test_a_bad_spec_is_reported_as_reading_it_here_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("version: 1\nnetwork:\n  icc: maybe\nbogus: 1\n")
    with pytest.raises(SpecError) as here:
        load(path)
    monkeypatch.setattr("dockyard.spec.resident.load", None)
    with pytest.raises(SpecError) as child:
        load_resident(str(path))
    assert child.value.problems == here.value.problems
    assert len(child.value.problems) == 2


def test_a_missing_file_is_the_same_error_too(tmp_path: Path) -> None:
    path = tmp_path / "nothing.yaml"
    with pytest.raises(SpecError) as here:
        load(path)
    with pytest.raises(SpecError) as child:
        load_resident(str(path))
    assert child.value.problems == here.value.problems


def test_repeated_values_become_one_object(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(f"version: 1\nnetwork:\n  published_ports:\n{PORTS}")
    spec = load(path)
    shared = compact(spec)
    assert shared == spec
    ips = {id(p["container_ip"]) for p in shared.network.published_ports}
    assert len(ips) == 1
    assert len({id(p["container_ip"]) for p in spec.network.published_ports}) > 1
