"""A 100,000-port spec with one bad entry must be reported within 2x the time a valid one
takes to load. yaml-rs refuses a duplicate key but does not say where it stands, so for a
duplicate key the loader handed the whole file to PyYAML to find it: 15 s for a 10 MB spec
whose valid twin loads in 0.7 s (measured on this machine: a second `container_port:` in
the last of 100,000 published ports).

Timing is measured, never asserted: these tests assert the mechanism instead. A duplicate key
in a file too large for PyYAML to read at once is located without PyYAML reading the file,
at the same place and in the same words as PyYAML's reading gives in a small file.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import SpecError
from dockyard.spec import duplicates, limits, load_text
from dockyard.spec import loader as spec_loader
from dockyard.spec import positions as spec_positions

ENTRY = "  - host_port: {n}\n    container_ip: 172.17.0.2\n    container_port: 80\n"


def large(ports: str = "") -> str:
    count = limits.SMALL_TEXT // len(ENTRY.format(n=10000)) + 1
    body = "".join(ENTRY.format(n=10000 + n) for n in range(count))
    return f"version: 1\nnetwork:\n  published_ports:\n{body}{ports}"


def no_whole_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("PyYAML read the whole file")

    monkeypatch.setattr(spec_positions, "careful_parse", refuse)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    return e.value.problems


def test_a_duplicate_key_in_a_large_spec_is_located_without_reading_it_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = large("  - host_port: 80\n    container_ip: 172.17.0.3\n    container_port: 80\n")
    text += "    container_port: 81\n"
    last = text.count("\n")
    expected = [f"spec.yaml:{last}:5: container_port: duplicate key (first set at line {last - 1})"]
    no_whole_reading(monkeypatch)
    assert problems(text) == expected


def test_the_same_words_as_pyyaml_gives() -> None:
    small = "version: 1\nnetwork:\n  icc: true\n  icc: false\n"
    assert problems(small) == ["spec.yaml:4:3: icc: duplicate key (first set at line 3)"]
    text = large() + "  icc: true\n  icc: false\n"
    last = text.count("\n")
    assert problems(text) == [
        f"spec.yaml:{last}:3: icc: duplicate key (first set at line {last - 1})"
    ]


def test_a_key_alike_in_two_mappings_is_no_duplicate_but_the_real_one_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`- host_port:` starts a new mapping each time; a block scalar's lines are text, not
    keys: neither may be taken for the duplicate."""
    text = large() + "dns:\n  search: [a.example]\n  options: [rotate]\n"
    text = text.replace("version: 1\n", "version: 1\nnote: |\n  search: 1\n  search: 2\n", 1)
    text += "  search: [b.example]\n"
    last = text.count("\n")
    no_whole_reading(monkeypatch)
    assert problems(text) == [
        f"spec.yaml:{last}:3: search: duplicate key (first set at line {last - 2})"
    ]


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_what_is_located_is_what_pyyaml_finds() -> None:
    """The examples with a key line copied further down (in its mapping, in another one, out
    of its `- ` item): every pair the text search reports is one PyYAML reports too."""
    rng = random.Random(12)
    located = 0
    for _ in range(400):
        lines = rng.choice(EXAMPLES).read_text().split("\n")
        keys = [i for i, line in enumerate(lines) if ":" in line and "#" not in line]
        line = lines[rng.choice(keys)]
        if rng.random() < 0.3:
            line = line.replace("- ", "  ", 1)
        lines.insert(rng.randint(keys[0] + 1, len(lines)), line)
        text = "\n".join(lines)
        error = spec_loader._fast(text)
        key = duplicates.key_of(str(error)) if isinstance(error, Exception) else None
        found = key and duplicates.locate(text, key, "spec.yaml", spec_loader._fast)
        if not found:
            continue
        with pytest.raises(SpecError) as e:
            spec_positions.careful_parse(text, "spec.yaml")
        assert set(found) <= set(e.value.problems), text
        located += 1
    assert located > 100
