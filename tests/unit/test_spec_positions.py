"""Positions in large specs: skimming must point where PyYAML reading the whole file would."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml_rs

from dockyard.errors import SpecError
from dockyard.spec import limits, load_text
from dockyard.spec.positions import Positions
from dockyard.spec.skim import Skim

PORTS = 4000  # over 300 KB: above limits.SMALL_TEXT, so positions are skimmed


def block_style(n: int, bad: dict[int, str] | None = None) -> str:
    lines = ["# a large spec", "version: 1", "network:", "  bridge: {name: docker0}"]
    lines.append("  published_ports:")
    for i in range(n):
        port = (bad or {}).get(i, str(1 + i % 60000))
        lines += [
            f"  - host_port: {port}",
            f"    container_ip: 172.17.{i // 250 % 250}.{i % 250 + 2}",
            f"    container_port: {1 + i % 60000}  # comment",
        ]
        if i >= 60000:  # so that no port is published twice
            lines.append("    proto: udp")
    lines += ["  ip_masq: true", "dns:", "  search: [a.example]"]
    return "\n".join(lines) + "\n"


def flow_items(n: int) -> str:
    items = "".join(
        f"    - {{host_port: {1 + i}, container_ip: 172.17.0.2, container_port: {1 + i}}}\n"
        for i in range(n)
    )
    return f"version: 1\nnetwork:\n  published_ports:\n{items}"


def locations(data: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += locations(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += locations(v, (*prefix, i))
    return out


def no_whole() -> Any:
    raise AssertionError("skimming gave up and read the whole file")


@pytest.mark.parametrize("text", [block_style(PORTS), flow_items(PORTS)], ids=["block", "flow"])
def test_skimmed_positions_are_pyyaml_s(text: str) -> None:
    assert len(text) > limits.SMALL_TEXT
    data = yaml_rs.loads(text)
    whole = Positions.of_text(text)
    skim = Skim(text, data, no_whole)
    every = locations(data)
    for loc in random.Random(12).sample(every, 100) + every[:20] + every[-20:]:
        for key in (False, True):
            assert skim.of(loc, key) == whole.of(loc, key), (loc, key)


def test_a_layout_it_cannot_skim_is_read_whole() -> None:
    """Keys inside a flow mapping (`network: {...}`): skimming finds block keys only."""
    text = (
        "version: 1\nnetwork: {\n  published_ports: [\n"
        + "".join(
            f"    {{host_port: {1 + i}, container_ip: 172.17.0.2, container_port: 1}},\n"
            for i in range(PORTS)
        )
        + "  ]}\n"
    )
    data = yaml_rs.loads(text)
    whole = Positions.of_text(text)
    fallbacks: list[int] = []

    def counted() -> Any:
        fallbacks.append(1)
        return whole.of

    loc = ("network", "published_ports", 1234, "host_port")
    assert Skim(text, data, counted).of(loc) == whole.of(loc) == (1238, 17)
    assert fallbacks == [1]


def test_errors_in_a_large_spec_are_where_a_small_spec_would_put_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = block_style(PORTS, bad={7: "0", 1500: "x", 2999: "70000"})

    def found() -> list[str]:
        with pytest.raises(SpecError) as e:
            load_text(text, "spec.yaml")
        return e.value.problems

    skimmed = found()
    monkeypatch.setattr(limits, "SMALL_TEXT", 1 << 30)
    assert skimmed == found()
    assert skimmed == [
        "spec.yaml:27:16: network.published_ports[7].host_port: must be a port number from 1 "
        "to 65535, got 0",
        "spec.yaml:4506:16: network.published_ports[1500].host_port: must be a whole number, "
        "got 'x'",
        "spec.yaml:9003:16: network.published_ports[2999].host_port: must be a port number "
        "from 1 to 65535, got 70000",
    ]


def test_one_bad_entry_among_100000_ports_is_located_without_reading_it_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It took 17 s, mostly PyYAML composing 10 MB to find one line: the whole-file reader
    must not be needed (bench/spec_scale.py measures the time)."""

    def whole(text: str) -> Positions:
        raise AssertionError("PyYAML read the whole file")

    monkeypatch.setattr(Positions, "of_text", whole)
    text = block_style(100_000, bad={57341: "0"})
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    assert e.value.problems == [
        "spec.yaml:172029:16: network.published_ports[57341].host_port: must be a port number "
        "from 1 to 65535, got 0"
    ]
