"""Where things stand in a spec file. PyYAML keeps every node's line and column, so it reads
the file when there is something to point at (an error), or when yaml-rs may not read it
(aliases, deep nesting): PyYAML builds aliases as shared nodes, so they can be counted before
anything is expanded. Runs with a good spec never import it."""

from __future__ import annotations

import re
from typing import Any

import yaml

from dockyard.errors import SpecError
from dockyard.spec import limits

Location = tuple[str | int, ...]
Place = tuple[int, int]  # line and column, from 1
Marks = dict[Location, tuple[Place, Place]]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecLoader(_Loader):  # type: ignore[misc, valid-type]
    """A safe loader that remembers duplicate keys instead of silently keeping the last one."""

    duplicates: list[tuple[str, yaml.Mark, yaml.Mark]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            if key in first:
                self.duplicates.append((str(key), key_node.start_mark, first[key]))
            first.setdefault(key, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A value PyYAML recognises but cannot build (an int of 5,000 digits, the 13th
        month) is a located error, not a ValueError from deep inside it."""
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as e:
            if node.tag.endswith(":int"):
                problem = "a number too long to read"
            else:
                problem = f"not a valid {node.tag.rsplit(':', 1)[-1]}: {e}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


# Booleans as YAML 1.2 has them, and yaml-rs reads them: only true and false. PyYAML's YAML 1.1
# also takes yes, no, on and off, so a file would mean one thing or the other depending on which
# parser read it (`ip_forward: off` is refused by one, and would leave forwarding on by the other).
_BOOL = "tag:yaml.org,2002:bool"
SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def place(mark: yaml.Mark) -> Place:
    return mark.line + 1, mark.column + 1


def position(source: str, mark: yaml.Mark) -> str:
    line, col = place(mark)
    return f"{source}:{line}:{col}"


class Positions:
    """(line, col) for a location (`("network", "bridge", "address")`) in a spec's text."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.node = node
        self.marks: Marks = _index(node) if node is not None else {}

    @classmethod
    def of_text(cls, text: str) -> Positions:
        return cls(yaml.compose(text, Loader=_Loader))

    def of(self, loc: Location, key: bool = False) -> Place:
        """Where the value at `loc` stands, or its nearest ancestor that exists."""
        for n in range(len(loc), 0, -1):
            marks = self.marks.get(loc[:n])
            if marks:
                return marks[0] if key and n == len(loc) else marks[1]
        return place(self.node.start_mark) if self.node is not None else (1, 1)


def _index(root: yaml.Node) -> Marks:
    marks: Marks = {}
    stack: list[tuple[yaml.Node, Location]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                child = (*loc, key_node.value)
                here = (place(key_node.start_mark), place(value_node.start_mark))
                marks.setdefault(child, here)
                if key_node.tag.endswith(":int") and key_node.value.isdigit():
                    marks.setdefault((*loc, int(key_node.value)), here)  # `1:` is the int 1
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                marks[(*loc, i)] = (place(item.start_mark), place(item.start_mark))
                stack.append((item, (*loc, i)))
    return marks


def careful_parse(text: str, source: str) -> tuple[dict[str, Any], Positions]:
    """The spec's data read by PyYAML, or a SpecError that says where the file goes wrong."""
    loader = SpecLoader(text)
    loader.duplicates = []
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([f"{source}: the file is empty; a spec needs at least `version: 1`"])
        _check_graph(node, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        raise SpecError([_yaml_problem(e, source)]) from None
    except yaml.YAMLError as e:
        raise SpecError([f"{source}: invalid YAML: {_one_line(str(e))}"]) from None
    except RecursionError:  # PyYAML without its C parser nests on the Python stack
        raise SpecError([f"{source}: {limits.depth_message()}"]) from None
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
    return data, Positions(node)


def _yaml_problem(e: yaml.MarkedYAMLError, source: str) -> str:
    mark = e.problem_mark or e.context_mark
    where = position(source, mark) if mark else source
    if e.problem == "exceeded maximum nesting depth":  # libyaml's own limit, 1,000 levels
        return f"{where}: {limits.depth_message()}"
    what = " ".join(p for p in (e.context, e.problem) if p)
    return f"{where}: invalid YAML: {_one_line(what)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_graph(root: yaml.Node, source: str) -> None:
    """Depth, and the size of what aliases expand to, counted on the graph PyYAML composed
    (an alias is the same node object again), each node once."""
    size: dict[int, tuple[int, int]] = {}  # id(node) -> (values, characters) once expanded
    open_nodes: set[int] = set()
    repeated: yaml.Node | None = None  # the first value used again through an alias
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, level, done = stack.pop()
        children = _children(node)
        if done:
            open_nodes.discard(id(node))
            values = 1 + sum(size[id(c)][0] for c in children)
            size[id(node)] = (values, sum(size[id(c)][1] for c in children))
            continue
        if id(node) in open_nodes:
            raise SpecError([f"{position(source, node.start_mark)}: an alias refers to itself"])
        if id(node) in size:
            repeated = repeated or node
            continue
        if not children:
            size[id(node)] = (1, len(node.value) if isinstance(node.value, str) else 0)
            continue
        if level > limits.MAX_DEPTH:
            raise SpecError([f"{position(source, node.start_mark)}: {limits.depth_message()}"])
        open_nodes.add(id(node))
        stack.append((node, level, True))
        stack.extend((c, level + 1, False) for c in reversed(children))
    values, chars = size[id(root)]
    if repeated is not None and values - len(size) > limits.MAX_NODES:
        raise SpecError([f"{position(source, repeated.start_mark)}: {limits.nodes_message()}"])
    if repeated is not None and chars > limits.MAX_EXPANDED_CHARS:
        raise SpecError([f"{position(source, repeated.start_mark)}: {limits.chars_message()}"])


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
