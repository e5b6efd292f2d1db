"""Where a duplicate key stands in a large spec, without PyYAML reading the whole file (15 s
for 100,000 published ports). yaml-rs refuses a duplicate key and names it, but not its
place. The text is searched for that key's block-style lines (`key:` or `- key:`): two at
one column with no line less indented between them are a candidate pair. A pair is
confirmed, not trusted: both its keys are renamed to one marker in a copy of the text, and
yaml-rs reading the copy must refuse that marker as a duplicate key, which it does only if
both are keys of one mapping (a line in a block scalar, or a key of another mapping, is
not). One pair is reported, the first yaml-rs meets; None when none is confirmed, and the
caller then reads the whole file after all.
"""

from __future__ import annotations

import ast
import re
import secrets
from collections.abc import Callable
from typing import Any

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_MESSAGE = re.compile(r"duplicate mapping key: (.+)")
Read = Callable[[str], Any]  # yaml-rs: the data, or the exception it raised


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
    """`SPEC:LINE:COL: key: duplicate key (first set at line N)` for the pair yaml-rs
    confirms: both keys of each candidate pair are renamed to one marker of that pair, and
    yaml-rs, reading the copy, names the marker of a pair that stands in one mapping."""
    pairs = _candidates("\n" + text, key)
    if not pairs:
        return None
    prefix = f"dup{secrets.token_hex(8)}k"
    marker = {span: f"{prefix}{n}" for n, pair in enumerate(pairs) for span in pair}
    error = read(_replace("\n" + text, marker)[1:])
    named = key_of(str(error)) if isinstance(error, Exception) else None
    if named is None or not named.startswith(prefix):
        return None
    first, second = pairs[int(named.removeprefix(prefix))]
    return [
        f"{source}:{_place(text, second[0] - 1)}: {key}: duplicate key "
        f"(first set at line {text.count(chr(10), 0, first[0] - 1) + 1})"
    ]


def _candidates(text: str, key: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(first, second) spans of the key's text, for block-style keys of one column with no
    line less indented between them: one regex pass (in C) for keys written `key:`, one for
    a first written `- key:`. The lines between are matched one way each (a blank or comment
    line not indented as far is told apart by a lookahead), so a failed match costs a line
    at a time, never backtracking over the alternatives."""
    name = re.escape(key)
    k = rf"(?:{name}|\"{name}\"|'{name}')[ \t]*:(?=[ \t\r\n]|\Z)"
    plain = rf"(?P<i> *)(?P<a1>{k})[^\n]*{_BETWEEN.format(lead='(?P=i)')}\n(?P=i)(?P<a2>{k})"
    item = (
        rf"(?P<d> *)-(?P<s> +)(?P<b1>{k})[^\n]*"
        rf"{_BETWEEN.format(lead='(?P=d) (?P=s)')}\n(?P=d) (?P=s)(?P<b2>{k})"
    )
    pairs = []
    for found in re.finditer(rf"\n(?:{plain}|{item})", text):
        first, second = ("a1", "a2") if found["a1"] is not None else ("b1", "b2")
        pairs.append((_span(text, found.start(first), key), _span(text, found.start(second), key)))
    return pairs


# The lines inside one mapping entry: indented at least as far as its key (`{lead}`), or blank,
# or a comment.
_BETWEEN = r"(?:\n(?:{lead}[^\n]*|(?!{lead})[ \t]*(?:#[^\n]*)?(?=\n)))*?"


def _span(text: str, at: int, key: str) -> tuple[int, int]:
    return at, at + len(key) + (2 if text[at] in "'\"" else 0)


def _replace(text: str, marker: dict[tuple[int, int], str]) -> str:
    out, at = [], 0
    for (start, end), name in sorted(marker.items()):
        out += [text[at:start], name]
        at = end
    return "".join([*out, text[at:]])


def _place(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"
