"""Positions in a large spec written as JSON (a program's output: YAML reads JSON), where the
block skimming finds no keys. The text is walked with the json module's own scanner (in C)
from the top down to the value: a mapping's members and a list's items are found once, each
by the offset it starts at. What the walk finds is checked: the value at the offset, read
again, must equal what yaml-rs read there; anything else (YAML flow style that is not JSON,
a value JSON reads otherwise) is None, and the caller reads the whole file after all."""

from __future__ import annotations

import itertools
import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

Location = tuple[str | int, ...]

_BLANK = re.compile(r"[ \t\n\r]*")
# One object's `}`, a comma, the next one's `{`: a literal first, for the regex engine to skip to.
_OBJECTS = re.compile(r"(\}[ \t\n\r]*,[ \t\n\r]*)(?=\{)")
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined] # the C scanner


class JsonWalk:
    def __init__(self, text: str, data: Any) -> None:
        self.text, self.data = text, data
        # Read as far as asked, and on from there when asked for more: a mapping's members
        # (key -> where the key and where its value start), a list's items (where each
        # starts), and where reading stopped (None at the end).
        self._members: dict[int, tuple[dict[str, tuple[int, int]], tuple[int, bool] | None]] = {}
        self._items: dict[int, tuple[list[int], int | None]] = {}

    def offset(self, loc: Location, key: bool) -> int | None:
        """Where the value at `loc` (or its key) starts in the text; None if not found."""
        try:
            return self._offset(loc, key)
        except (ValueError, IndexError, StopIteration, RecursionError):
            return None

    def _offset(self, loc: Location, key: bool) -> int | None:
        at = self._blank(0)
        value = self.data
        key_at = at
        for part in loc:
            if isinstance(value, dict) and isinstance(part, str) and part in value:
                found = self._member(at, part)
                if found is None:
                    return None
                key_at, at = found
            elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
                key_at = at = self._item(at, part, value)
            else:
                return None
            value = value[part]
        if _SCAN(self.text, at)[0] != value:  # raises StopIteration when no value is there
            return None
        return key_at if key else at

    def _member(self, at: int, name: str) -> tuple[int, int] | None:
        """The first member called `name` of the object at `at` (yaml-rs refuses a second).
        A member's value is skipped only when a later member is asked for: the one asked for
        may hold all the rest (100,000 ports)."""
        found, resume = self._members.get(at) or ({}, (self._open(at, "{"), False))
        while name not in found and resume is not None:
            resume = self._next_member(found, *resume)
        self._members[at] = (found, resume)
        return found.get(name)

    def _next_member(
        self, found: dict[str, tuple[int, int]], at: int, in_value: bool
    ) -> tuple[int, bool] | None:
        """Read on from `at`: past the value that starts there, or the member there."""
        if in_value:
            after = self._after(_SCAN(self.text, at)[1], "}")
            return None if after is None else (after, False)
        if self.text[at] == "}":
            return None
        if self.text[at] != '"':
            raise ValueError("a key that is not a JSON string")
        name, end = scanstring(self.text, at + 1)
        colon = self._blank(end)
        if self.text[colon] != ":":
            raise ValueError("no ':' after a key")
        value_at = self._blank(colon + 1)
        found.setdefault(name, (at, value_at))
        return value_at, True

    def _item(self, at: int, index: int, value: list[Any]) -> int:
        if at not in self._items:
            split = self._objects(at, value)
            if split is not None:
                self._items[at] = (split, None)
        items, resume = self._items.get(at) or ([], self._open(at, "["))
        while len(items) <= index and resume is not None:
            if self.text[resume] == "]":
                resume = None
                break
            items.append(resume)
            resume = self._after(_SCAN(self.text, resume)[1], "]")
        self._items[at] = (items, resume)
        return items[index]  # IndexError: fewer items than yaml-rs read

    def _objects(self, at: int, value: list[Any]) -> list[int] | None:
        """Where each item of a list of objects starts, found by splitting where one item's
        `}` and the next one's `{` meet (in C: scanning 100,000 items one by one builds each
        of them); kept if the first and the last item read there are the data's, and the
        list closes after the last."""
        first = self._open(at, "[")
        if len(value) < 2 or self.text[first] != "{":
            return None
        parts = _OBJECTS.split(self.text[first:], maxsplit=len(value) - 1)
        if len(parts) != 2 * len(value) - 1:
            return None
        starts = list(itertools.accumulate(map(len, parts[:-1]), initial=first))[::2]
        last, end = _SCAN(self.text, starts[-1])
        if _SCAN(self.text, first)[0] != value[0] or last != value[-1]:
            return None
        return starts if self._after(end, "]") is None else None

    def _open(self, at: int, bracket: str) -> int:
        if self.text[at] != bracket:
            raise ValueError(f"no {bracket!r}")
        return self._blank(at + 1)

    def _after(self, at: int, closing: str) -> int | None:
        """Past a value: where the next one starts, or None at the closing bracket."""
        at = self._blank(at)
        if self.text[at] == closing:
            return None
        if self.text[at] != ",":
            raise ValueError("no ',' between values")
        return self._blank(at + 1)

    def _blank(self, at: int) -> int:
        found = _BLANK.match(self.text, at)
        return found.end() if found else at
