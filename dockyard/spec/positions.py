"""Where things stand in a spec file. PyYAML keeps every node's line and column, so it reads
the file when there is something to point at: an error. Runs with a good spec never import it."""

from __future__ import annotations

from typing import Any

import yaml

from dockyard.errors import SpecError

Location = tuple[str | int, ...]
Marks = dict[Location, tuple[yaml.Mark, yaml.Mark]]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_Loader):  # type: ignore[misc, valid-type]
    """A safe loader that remembers duplicate keys instead of silently keeping the last one."""

    duplicates: list[tuple[str, yaml.Mark, yaml.Mark]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = key_node.value
            if key in first and isinstance(key_node, yaml.ScalarNode):
                self.duplicates.append((str(key), key_node.start_mark, first[key]))
            first.setdefault(key, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def position(source: str, mark: yaml.Mark) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


class Positions:
    """`file:line:col` for a location (`("network", "bridge", "address")`) in a spec's text."""

    def __init__(self, text: str, source: str, node: yaml.Node | None = None) -> None:
        self.source = source
        self.node = node if node is not None else yaml.compose(text, Loader=_Loader)
        self.marks: Marks = {}
        if self.node is not None:
            _index(self.node, (), self.marks)

    def of(self, loc: Location, key: bool = False) -> str:
        """Where the value at `loc` stands, or its nearest ancestor that exists."""
        for n in range(len(loc), 0, -1):
            marks = self.marks.get(loc[:n])
            if marks:
                mark = marks[0] if key and n == len(loc) else marks[1]
                return position(self.source, mark)
        return position(self.source, self.node.start_mark) if self.node else f"{self.source}:1:1"


def _index(node: yaml.Node, loc: Location, marks: Marks) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*loc, key_node.value)
            marks.setdefault(child, (key_node.start_mark, value_node.start_mark))
            _index(value_node, child, marks)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[(*loc, i)] = (item.start_mark, item.start_mark)
            _index(item, (*loc, i), marks)


def careful_parse(text: str, source: str) -> tuple[dict[str, Any], Positions]:
    """The spec's data read by PyYAML, or a SpecError that says where the file goes wrong."""
    loader = _SpecLoader(text)
    loader.duplicates = []
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([f"{source}: the file is empty; a spec needs at least `version: 1`"])
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = position(source, mark) if mark else source
        what = " ".join(p for p in (e.context, e.problem) if p)
        raise SpecError([f"{where}: invalid YAML: {what}"]) from None
    except yaml.YAMLError as e:
        raise SpecError([f"{source}: invalid YAML: {e}"]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise SpecError(
            [
                f"{position(source, mark)}: {key}: duplicate key "
                f"(first set at line {first.line + 1})"
                for key, mark, first in loader.duplicates
            ]
        )
    if not isinstance(data, dict):
        raise SpecError(
            [
                f"{position(source, node.start_mark)}: "
                "a spec is a mapping of keys such as `version: 1`"
            ]
        )
    return data, Positions(text, source, node)
