"""The part of a spec that is valid, so that the rules tying fields together can be checked
when other fields are wrong: invalid values are taken out (a field falls back to its default,
a list loses the item), and every location can be mapped back to the file's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Location = tuple[str | int, ...]
ROUNDS = 4  # taking a value out can make its parent invalid (an empty list); a few rounds settle it


@dataclass
class Partial:
    """What was taken out of the data, and where each kept list item stood."""

    data: Any
    removed: set[Location] = field(default_factory=set)
    kept: dict[Location, list[int]] = field(default_factory=dict)

    def valid(self, *locs: Location) -> bool:
        """Whether each field at `locs` holds what the user wrote (not a stand-in default)."""
        return not any(loc[: len(r)] == r for loc in locs for r in self.removed)

    def original(self, loc: Location) -> Location:
        """`loc` in the partial data, as a location in the user's data."""
        out: list[str | int] = []
        for part in loc:
            kept = self.kept.get(tuple(out))
            out.append(kept[part] if kept is not None and isinstance(part, int) else part)
        return tuple(out)

    def without(self, locs: Iterable[Location], first_round: bool) -> None:
        """Take out the values at `locs` (in this partial data's terms). In the first round a
        bad list item goes alone; later, the whole field it belongs to goes."""
        items: dict[Location, set[int]] = {}
        for loc in locs:
            cut = _cut(self.data, loc, first_round)
            if cut is None:
                continue
            parent, last = cut[:-1], cut[-1]
            if isinstance(value_at(self.data, parent), list) and isinstance(last, int):
                items.setdefault(parent, set()).add(last)
            else:
                self.removed.add(self.original(cut))
                self.data = _replace(self.data, parent, lambda d, k=last: _drop_key(d, k))
        for parent, gone in items.items():
            if not isinstance(value_at(self.data, parent), list):
                continue  # a field taken out above held it
            original = self.original(parent)
            before = self.kept.get(original, list(range(len(value_at(self.data, parent)))))
            self.removed.update((*original, before[i]) for i in gone)
            self.kept[original] = [n for i, n in enumerate(before) if i not in gone]
            self.data = _replace(self.data, parent, lambda lst, g=gone: _drop_items(lst, g))


def _cut(data: Any, loc: Location, first_round: bool) -> Location | None:
    """What to take out for an error at `loc`: in the first round the list item on its path,
    if there is one; else the deepest field reached through mappings alone."""
    node: Any = data
    path: Location = ()
    field_at: Location | None = None
    item: Location | None = None
    for part in loc:
        if not _has(node, part):
            break
        if isinstance(node, list):
            item = item or (*path, part)
        elif item is None:
            field_at = (*path, part)
        node, path = node[part], (*path, part)
    return item if first_round and item is not None else field_at


def value_at(data: Any, loc: Location) -> Any:
    """The value at `loc`, or None where there is none."""
    for part in loc:
        if not _has(data, part):
            return None
        data = data[part]
    return data


def _has(data: Any, part: str | int) -> bool:
    if isinstance(data, list):
        return isinstance(part, int) and 0 <= part < len(data)
    return isinstance(data, dict) and part in data


def _replace(data: Any, loc: Location, change: Any) -> Any:
    """A copy of `data` with the value at `loc` replaced by change(value); only the path is
    copied, the rest is shared."""
    if not loc:
        return change(data)
    head, rest = loc[0], loc[1:]
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    copy[head] = _replace(data[head], rest, change)
    return copy


def _drop_key(mapping: dict[Any, Any], key: Any) -> dict[Any, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def _drop_items(items: list[Any], gone: set[int]) -> list[Any]:
    return [x for i, x in enumerate(items) if i not in gone]
