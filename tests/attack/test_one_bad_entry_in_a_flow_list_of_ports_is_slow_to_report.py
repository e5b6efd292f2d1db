"""A 100,000-port spec with one bad entry must be reported within 2x the time a valid one
takes to load. Written as a flow sequence of flow mappings on one line (`published_ports:
[{...}, {...}, ...]`, as a program that writes JSON-style YAML produces), the bad entry took
12.4 s to report where the valid spec loads in 0.6 s (measured here): skimming found the
key but not the item inside a flow sequence, and PyYAML then read the whole file.

Timing is measured, never asserted: the test asserts the mechanism (PyYAML does not read the
whole file) and the place, which must be PyYAML's.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml_rs

from dockyard.errors import SpecError
from dockyard.spec import limits, load_text
from dockyard.spec.positions import Positions
from dockyard.spec.skim import Skim

PORTS = 5000  # over SMALL_TEXT


def one_line(n: int, bad: int | None = None, sep: str = ", ") -> str:
    items = sep.join(
        f"{{host_port: {0 if i == bad else 1 + i}, container_ip: 172.17.0.2, container_port: 80}}"
        for i in range(n)
    )
    return f"version: 1\nnetwork:\n  published_ports: [{items}]\n"


def no_whole(*args: Any) -> Any:
    raise AssertionError("PyYAML read the whole file")


def test_a_bad_item_of_a_flow_list_is_located_without_reading_it_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = one_line(PORTS, bad=2345)
    assert len(text) > limits.SMALL_TEXT
    at = text.index("host_port: 0,") + len("host_port: ") - text.index("\n  published_ports")
    monkeypatch.setattr(Positions, "of_text", no_whole)
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    assert e.value.problems == [
        f"spec.yaml:3:{at}: network.published_ports[2345].host_port: must be a port number "
        "from 1 to 65535, got 0"
    ]


@pytest.mark.parametrize(
    "text",
    [
        one_line(PORTS),
        one_line(PORTS, sep=",\n    "),
        one_line(PORTS, sep=" ,  "),
        one_line(PORTS, sep=",\n    ").replace(": [{", ": [\n    {").replace("}]\n", "},\n  ]\n"),
    ],
    ids=["one line", "an item a line", "spaces", "brackets on lines of their own"],
)
def test_flow_items_are_placed_where_pyyaml_places_them(text: str) -> None:
    data = yaml_rs.loads(text)
    whole = Positions.of_text(text)
    skim = Skim(text, data, no_whole)
    for i in (0, 1, 2345, PORTS - 1):
        for rest in ((), ("host_port",), ("container_port",)):
            for key in (False, True):
                loc = ("network", "published_ports", i, *rest)
                assert skim.of(loc, key) == whole.of(loc, key), (loc, key)
