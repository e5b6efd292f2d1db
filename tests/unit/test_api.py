"""dockyard.api: loading a spec given as data or as a file, with the located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard import api
from dockyard.errors import SpecError


def test_data_and_file_give_the_same_spec(tmp_path: Path) -> None:
    data = {"version": 1, "network": {"bridge": {"mtu": 1450}}}
    path = tmp_path / "spec.yaml"
    path.write_text(api.rendered(data))
    assert api.load(data) == api.load(path) == api.load(str(path))
    assert api.load(data).network.bridge.mtu == 1450


def test_problems_in_data_name_their_field_and_place_in_the_rendering() -> None:
    data = {"version": 1, "network": {"bridge": {"mtu": 10}}, "stroage": {}}
    with pytest.raises(SpecError) as e:
        api.load(data)
    lines = api.rendered(data).splitlines()
    assert lines[3] == "    mtu: 10"
    assert e.value.problems[0].startswith("<inline spec>:4:10: network.bridge.mtu: ")
    assert e.value.problems[1].startswith("<inline spec>:5:1: stroage: unknown field")
    assert len(e.value.problems) == 2


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        api.load(tmp_path / "none.yaml")
    assert e.value.problems == [f"{tmp_path}/none.yaml: no such file"]
