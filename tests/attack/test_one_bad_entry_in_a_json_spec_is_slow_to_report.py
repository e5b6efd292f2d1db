"""YAML reads JSON, so a program may write its spec as JSON (`generate-spec | reconcile
validate -`). The skimming that places an error in a large spec finds block-style keys only,
so with one bad entry among 100,000 published ports PyYAML read the whole file to place it:
10.5 s (compact) and 17.7 s (indented) where the valid spec loads in 0.6-0.8 s (measured
here), against a goal of 2x.

Timing is measured, never asserted: the tests assert the mechanism (PyYAML does not read the
whole file) and the places, which must be PyYAML's.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import yaml_rs

from dockyard.errors import SpecError
from dockyard.spec import limits, load_text
from dockyard.spec.positions import Positions
from dockyard.spec.skim import Skim
from tests.unit.test_spec_positions import locations

PORTS = 5000  # over SMALL_TEXT


def spec(bad: int | None = None) -> dict[str, Any]:
    ports = [
        {"host_port": 0 if i == bad else 1 + i, "container_ip": "172.17.0.2", "container_port": 80}
        for i in range(PORTS)
    ]
    return {"version": 1, "network": {"icc": False, "published_ports": ports}, "dns": {}}


def no_whole(*args: Any) -> Any:
    raise AssertionError("PyYAML read the whole file")


@pytest.mark.parametrize("indent", [None, 2, "\t"], ids=["compact", "indented", "tabs"])
def test_a_bad_entry_of_a_json_spec_is_located_without_reading_it_all(
    monkeypatch: pytest.MonkeyPatch, indent: int | str | None
) -> None:
    text = json.dumps(spec(bad=3210), indent=indent)
    assert len(text) > limits.SMALL_TEXT
    whole = Positions.of_text(text).of(("network", "published_ports", 3210, "host_port"))
    monkeypatch.setattr(Positions, "of_text", no_whole)
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.json")
    assert e.value.problems == [
        f"spec.json:{whole[0]}:{whole[1]}: network.published_ports[3210].host_port: must be a "
        "port number from 1 to 65535, got 0"
    ]


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
def test_json_positions_are_pyyaml_s(indent: int | None) -> None:
    text = json.dumps(spec(), indent=indent)
    data = yaml_rs.loads(text)
    whole = Positions.of_text(text)
    skim = Skim(text, data, no_whole)
    every = locations(data)
    for loc in random.Random(12).sample(every, 60) + every[:10] + every[-10:]:
        for key in (False, True):
            assert skim.of(loc, key) == whole.of(loc, key), (loc, key)


def test_yaml_flow_that_is_not_json_is_read_whole() -> None:
    text = json.dumps(spec()).replace('"container_ip"', "container_ip")
    data = yaml_rs.loads(text)
    whole = Positions.of_text(text)
    fallbacks: list[int] = []

    def counted() -> Any:
        fallbacks.append(1)
        return whole.of

    loc = ("network", "published_ports", 1234, "container_ip")
    assert Skim(text, data, counted).of(loc) == whole.of(loc)
    assert fallbacks == [1]
