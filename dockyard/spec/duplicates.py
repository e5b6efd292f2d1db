"""Where a duplicate key stands in a large spec, without PyYAML reading the whole file (15 s
for 100,000 published ports). yaml-rs refuses a duplicate key and names it, but not its
place. The text is searched for that key's block-style lines (`key:` or `- key:`), and two of
them at the same column with no line less indented between them are a candidate pair. A pair
is confirmed, not trusted: both keys are renamed to markers in a copy of the text, yaml-rs
reads the copy, and the pair stands only if both markers are keys of one mapping (a line in a
block scalar, or a key of another mapping, is not). None when nothing is confirmed: the caller
then reads the whole file after all.
"""

from __future__ import annotations

import ast
import re
import secrets
from collections.abc import Callable
from typing import Any

_LEAD = re.compile(r" *((?:- +)?)")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_MESSAGE = re.compile(r"duplicate mapping key: (.+)")
Read = Callable[[str], Any]  # yaml-rs, keeping the first of duplicate keys


def key_of(message: str) -> str | None:
    """The key yaml-rs names in its message, if it is a plain name (as a spec's keys are)."""
    found = _MESSAGE.fullmatch(message.strip())
    if found is None:
        return None
    try:
        key = ast.literal_eval(found[1])
    except (ValueError, SyntaxError):
        return None
    return key if isinstance(key, str) and _NAME.fullmatch(key) else None


def locate(text: str, key: str, source: str, read: Read) -> list[str] | None:
    """`SPEC:LINE:COL: key: duplicate key (first set at line N)` for each confirmed pair."""
    pairs = _candidates("\n" + text, key)
    if not pairs:
        return None
    token = secrets.token_hex(8)
    spans = sorted({span for pair in pairs for span in pair})
    marker = {span: f"dup{token}k{n}" for n, span in enumerate(spans)}
    try:
        data = read(_replace("\n" + text, marker)[1:])
    except Exception:
        return None
    together = _marked_mappings(data, set(marker.values()))
    out = []
    for first, second in pairs:
        if any({marker[first], marker[second]} <= keys for keys in together):
            out.append(
                f"{source}:{_place(text, second[0] - 1)}: {key}: duplicate key "
                f"(first set at line {text.count(chr(10), 0, first[0] - 1) + 1})"
            )
    return out or None


def _candidates(text: str, key: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(first, second) spans of the key's text, for block-style keys of the same column with
    nothing less indented between them. A key of each of 100,000 published ports is a match,
    so the loop does little: one search between two matches of one column."""
    name = re.escape(key)
    pattern = re.compile(rf"(?:{name}|\"{name}\"|'{name}')[ \t]*:(?=[ \t\r\n]|\Z)")
    last: dict[int, int] = {}  # column -> where the last key there ends
    spans: dict[int, tuple[int, int]] = {}
    shallower: dict[int, re.Pattern[str]] = {}
    pairs = []
    for found in pattern.finditer(text):
        start = found.start()
        line = text.rfind("\n", 0, start)
        lead = _LEAD.fullmatch(text, line + 1, start)
        if lead is None:  # not at the start of its line, nor after `- `
            continue
        col, end = start - line - 1, start + len(key) + (text[start] in "'\"") * 2
        before = last.get(col)
        if before is not None and lead.end(1) == lead.start(1):  # not a `- key:`
            outdent = shallower.get(col)
            if outdent is None:
                outdent = shallower[col] = _outdent(col)
            if outdent.search(text, before, line) is None:
                pairs.append((spans[before], (start, end)))
                continue
        last[col] = end
        spans[end] = (start, end)
    return pairs


def _outdent(col: int) -> re.Pattern[str]:
    """A line less indented than `col`: it ends the mapping whose keys stand there."""
    return re.compile(rf"\n {{0,{col - 1}}}[^ \t\r\n#]" if col else r"\n[^\n]")


def _replace(text: str, marker: dict[tuple[int, int], str]) -> str:
    out, at = [], 0
    for (start, end), name in sorted(marker.items()):
        out += [text[at:start], name]
        at = end
    return "".join([*out, text[at:]])


def _marked_mappings(data: Any, markers: set[str]) -> list[set[str]]:
    """The markers each mapping holds, for the mappings that hold any."""
    out = []
    stack = [data]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            if not markers.isdisjoint(item):
                out.append(markers.intersection(item))
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    return out


def _place(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"
