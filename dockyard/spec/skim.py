"""Positions in a large spec without PyYAML reading all of it (9 s for 100,000 published
ports): the block structure is skimmed by indentation down to the entry that holds the value,
and PyYAML reads only that entry. What PyYAML reads there must be what yaml-rs read there,
and a sequence must have as many entries as the data has items; when anything does not
match (flow style, unusual layout), the whole text is read after all."""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from dockyard.spec.jsonskim import JsonWalk
from dockyard.spec.positions import Positions, SpecLoader

Location = tuple[str | int, ...]
Place = tuple[int, int]
Locate = Callable[[Location, bool], Place | None]

SLICE_MAX = 64 << 10  # an entry this small is handed to PyYAML whole
COUNTED_LINES = 16  # positions whose line is counted before the text's lines are indexed

# Every pattern starts at the line feed before a line, so that the regex engine can skip
# from line feed to line feed; the text is searched with one put in front of its first line.
_CONTENT_LINE = re.compile(r"\n *(?=[^ \t\r\n#])")
_END = r"(?=[ \t\r\n]|\Z)"
_JSON_START = re.compile(r"\n[ \t\r\n]*\{")  # a document that may be JSON
_CLOSING_LINE = re.compile(r" *\]")
# Between two flow mappings of a flow sequence: `}, {`. Its `}` first, so that the regex
# engine skips from one to the next; the items get it back.
_FLOW_ITEMS = re.compile(r"(\}[ \t\r\n]*,[ \t\r\n]*)(?=\{)")


@dataclass(frozen=True)
class Span:
    """One entry of a block collection: a mapping key and its value, or a sequence item."""

    start: int  # where its first line starts
    end: int  # where it ends: the start of the next entry, or of the parent's end
    head: int  # the key's first character, or the item's '-'


@cache
def _key_pattern(col: int, key: str) -> re.Pattern[str]:
    name = re.escape(key)
    first = f"|{' ' * (col - 2)}- " if col >= 2 else ""
    return re.compile(rf"\n(?:{' ' * col}{first})(?P<key>{name}|\"{name}\"|'{name}')[ \t]*:{_END}")


@cache
def _outdent_pattern(col: int, same_column_items: bool) -> re.Pattern[str]:
    """A content line indented at most `col` (at exactly `col`, not a `- ` item when the
    value is a sequence written at its key's column)."""
    content = r"[^ \t\r\n#]"
    if not same_column_items:
        return re.compile(rf"\n {{0,{col}}}{content}")
    shallower = rf" {{0,{col - 1}}}{content}|" if col else ""
    return re.compile(rf"\n(?:{shallower} {{{col}}}(?!-[ \t\r\n]){content})")


class Skim:
    def __init__(self, text: str, data: Any, whole: Callable[[], Locate]) -> None:
        self.text = "\n" + text  # offsets below are in this text
        self.data = data
        self._make_whole = whole
        self._whole: Locate | None = None
        self._entries: dict[tuple[int, int, int], list[int] | None] = {}
        self._keys: dict[tuple[int, int, int, str], Span | None] = {}
        self._line_starts: list[int] | None = None
        self._counted = 0
        self._flows: dict[int, tuple[list[int], list[str]] | None] = {}
        self._json: JsonWalk | None = None

    def of(self, loc: Location, key: bool = False) -> Place | None:
        try:
            found = self._skim(loc, key)
        except (yaml.YAMLError, RecursionError, ValueError):
            found = None
        if found is None and _JSON_START.match(self.text):
            if self._json is None:
                self._json = JsonWalk(self.text[1:], self.data)
            at = self._json.offset(loc, key)
            found = None if at is None else self._place(at + 1)
        if found is not None:
            return found
        if self._whole is None:
            self._whole = self._make_whole()
        return self._whole(loc, key)

    def _skim(self, loc: Location, key: bool) -> Place | None:
        start, end, col = 1, len(self.text), 0
        value = self.data
        for n, part in enumerate(loc):
            if isinstance(value, dict) and part in value:
                span = self._key(start, end, col, str(part))
            elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
                span = self._item(start, end, col, len(value), part)
            else:
                return None
            if span is None:
                return None
            value = value[part]
            rest = loc[n + 1 :]
            if span.end - span.start <= SLICE_MAX:
                return self._in_slice(span, part, value, rest, key)
            if not rest:
                return self._at(span, isinstance(part, int), key)
            inner = self._inside(span, isinstance(part, int))
            if inner is None:
                return self._in_flow(span, isinstance(part, int), value, rest, key)
            start, end, col = inner
        return None

    def _in_flow(
        self, span: Span, item: bool, value: Any, rest: Location, key: bool
    ) -> Place | None:
        """An item of a flow sequence of flow mappings (`[{...}, {...}]`, as a program writing
        JSON-style YAML lays out 100,000 ports): the items are where the text splits at
        `}` `,` `{`, if it splits into as many as the data has; PyYAML reads only the one."""
        index = rest[0] if rest else None
        if not isinstance(value, list) or not isinstance(index, int) or not 0 <= index < len(value):
            return None
        items = self._flow_items(self._after_indicator(span, item), span.end, len(value))
        if items is None:
            return None
        at, piece = items[0][index], items[1][index]
        # PyYAML reads the item alone, its first line indented as in the file.
        lead = at - self._line_start(at)
        if index == len(value) - 1:  # YAML allows a comma after the last item
            piece = piece.rstrip().removesuffix(",")
        else:
            piece += "}"
        loader = SpecLoader(" " * lead + piece.strip())
        loader.duplicates = []
        try:
            node = loader.get_single_node()
            if node is None or loader.construct_document(node) != value[index]:
                return None
        finally:
            loader.dispose()
        line, col = Positions(node).of(rest[1:], key)
        return line + self._line_of(at) - 1, col

    def _flow_items(self, after: int, end: int, count: int) -> tuple[list[int], list[str]] | None:
        """Where each of the `count` items of the flow sequence opening at `after` starts,
        and its text; None unless it splits into that many. Split once: a spec with many
        errors asks for many items."""
        if after not in self._flows:
            self._flows[after] = None
            close = self.text.rfind("]", after, end)
            if close == -1 and _CLOSING_LINE.match(self.text, end):
                close = self.text.index("]", end)  # `]` on a line of its own, at the key's column
            if self.text[after : after + 1] == "[" and close != -1:
                parts = _FLOW_ITEMS.split(self.text[after + 1 : close])
                if len(parts) == 2 * count - 1:
                    pieces = parts[::2]  # each but the last without its `}`
                    ends = itertools.accumulate(map(len, parts), initial=after + 1)
                    starts = [
                        at + len(piece) - len(piece.lstrip())
                        for at, piece in zip(
                            itertools.islice(ends, 0, None, 2), pieces, strict=False
                        )
                    ]
                    self._flows[after] = (starts, pieces)
        return self._flows[after]

    def _key(self, start: int, end: int, col: int, name: str) -> Span | None:
        cached = (start, end, col, name)
        if cached not in self._keys:
            self._keys[cached] = self._find_key(start, end, col, name)
        return self._keys[cached]

    def _find_key(self, start: int, end: int, col: int, name: str) -> Span | None:
        found = _key_pattern(col, name).search(self.text, start - 1, end)
        if found is None:
            return None
        line_end = self.text.find("\n", found.end())
        on_line = self.text[found.end() : line_end if line_end != -1 else end]
        value_below = not on_line.split("#", 1)[0].strip()
        stop = _outdent_pattern(col, value_below).search(self.text, line_end, end)
        return Span(found.start() + 1, stop.start() + 1 if stop else end, found.start("key"))

    def _item(self, start: int, end: int, col: int, count: int, index: int) -> Span | None:
        """The `index`th of `count` items, if the region holds exactly that many `- ` lines
        at `col`; found with str.find, as a 100,000-item list is the case this is for."""
        cached = (start, end, col)
        if cached not in self._entries:
            self._entries[cached] = self._item_lines(start, end, col, count)
        entries = self._entries[cached]
        if entries is None:
            return None
        stop = entries[index + 1] if index + 1 < count else end
        return Span(entries[index], stop, entries[index] + col)

    def _item_lines(self, start: int, end: int, col: int, count: int) -> list[int] | None:
        """Where each `- ` line at `col` starts. Only that form is looked for: the others
        (`-` alone on its line) are rare, and a count that does not match leaves them to
        PyYAML. C-level splitting, as a 100,000-item list is what this is for."""
        needle = "\n" + " " * col + "- "
        pieces = self.text[start - 1 : end].split(needle)
        if len(pieces) - 1 != count:
            return None
        ends = itertools.accumulate(len(piece) + len(needle) for piece in pieces[:-1])
        return [start + at - len(needle) for at in ends]

    def _inside(self, span: Span, item: bool) -> tuple[int, int, int] | None:
        """Where the entry's value holds its own entries, and their column; None when the
        value is written on the entry's line (flow style) or is not a collection."""
        after = self._after_indicator(span, item)
        line_end = self.text.find("\n", after)
        rest_of_line = self.text[after : line_end if line_end != -1 else span.end]
        if rest_of_line.split("#", 1)[0].strip():
            if not item:
                return None
            # `- key: value`: the item is a mapping whose keys stand at this column
            return span.start, span.end, after - self._line_start(after)
        below = self._content_below(after, span.end)
        if below is None:
            return None
        return below.start() + 1, span.end, below.end() - below.start() - 1

    def _after_indicator(self, span: Span, item: bool) -> int:
        """The first character after the item's `- ` or the key's `:`, past spaces."""
        at = span.head + 1 if item else self.text.index(":", span.head) + 1
        while at < span.end and self.text[at] in " \t":
            at += 1
        return at

    def _at(self, span: Span, item: bool, key: bool) -> Place:
        """Where PyYAML would put the entry's key or value, without reading it."""
        if key:
            return self._place(span.head)
        after = self._after_indicator(span, item)
        if self.text[after : after + 1] not in ("", "\n", "\r", "#"):
            return self._place(after)
        below = self._content_below(after, span.end)
        return self._place(below.end() if below else after)

    def _in_slice(
        self, span: Span, part: str | int, value: Any, rest: Location, key: bool
    ) -> Place | None:
        piece = self.text[span.start : span.end]
        if isinstance(part, int):
            expected: Any = [value]
            relative: Location = (0, *rest)
        else:
            # The first key of a `- key: value` item: blank the `- ` so the piece is a mapping.
            lead = span.head - span.start
            piece = " " * lead + piece[lead:]
            expected = {part: value}
            relative = (part, *rest)
        loader = SpecLoader(piece)
        loader.duplicates = []
        try:
            node = loader.get_single_node()
            if node is None or loader.construct_document(node) != expected:
                return None
        finally:
            loader.dispose()
        line, col = Positions(node).of(relative, key)
        return line + self._line_of(span.start) - 1, col

    def _place(self, offset: int) -> Place:
        return self._line_of(offset), offset - self._line_start(offset) + 1

    def _line_of(self, offset: int) -> int:
        """The line `offset` is on: the line feeds before it counted (in C) for the first
        few; then one pass over the text, and a search per position (a spec with thousands
        of errors asks for thousands)."""
        if self._line_starts is None and self._counted < COUNTED_LINES:
            self._counted += 1
            return self.text.count("\n", 0, offset)
        if self._line_starts is None:
            lengths = (len(line) + 1 for line in self.text.split("\n"))
            self._line_starts = list(itertools.accumulate(lengths, initial=0))
        return bisect.bisect_right(self._line_starts, offset) - 1

    def _line_start(self, offset: int) -> int:
        return self.text.rfind("\n", 0, offset) + 1

    def _content_below(self, offset: int, end: int) -> re.Match[str] | None:
        """The next line below `offset`'s that holds something other than a comment."""
        line_end = self.text.find("\n", offset, end)
        return None if line_end == -1 else _CONTENT_LINE.search(self.text, line_end, end)


def entries_start(text: str, keys: tuple[str, ...]) -> tuple[int, int] | None:
    """Where the block collection reached by the mapping `keys` from the top has its first
    entry: the offset in `text` of that entry's line, and its column. Found by indentation
    alone, the first key of each name at each column, without finding where anything ends
    (a scan of the whole file): the caller checks that the text before it is what it takes
    it to be."""
    skim = Skim(text, None, lambda: lambda loc, key: None)
    start, col, end = 1, 0, len(skim.text)
    for name in keys:
        found = _key_pattern(col, name).search(skim.text, start - 1, end)
        if found is None:
            return None
        line_end = skim.text.find("\n", found.end())
        if line_end == -1 or skim.text[found.end() : line_end].split("#", 1)[0].strip():
            return None  # nothing below, or a value on the key's line
        below = skim._content_below(found.end(), end)
        if below is None:
            return None
        start, col = below.start() + 1, below.end() - below.start() - 1
    return start - 1, col
