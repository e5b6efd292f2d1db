"""JSON as Go's encoding/json read it, for the files Docker 1.x loaded with it.

Docker decoded its metadata into Go structs: a key matches a field whatever its case
(`"id"` fills `ID`), a later key wins over an earlier one, `null` leaves a field as it was,
and a value of the wrong type fails the whole decode. Go knows no `NaN` or `Infinity`, and
`json.Decoder` (config.json) reads the first value of a file and ignores what follows it,
where `json.Unmarshal` (the tag store) refuses anything after it.
"""

from __future__ import annotations

import json
from typing import Any


class Pairs(list[tuple[str, Any]]):
    """An object as Go's decoder walks it: its members in file order, duplicates kept."""


_BLANK = " \t\n\r"  # the only whitespace JSON (and Go) allows between tokens


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


_DECODER = json.JSONDecoder(object_pairs_hook=Pairs, parse_constant=_no_constant)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")  # Go replaces bad UTF-8, as this does


def unmarshal(raw: bytes) -> Any:
    """`json.Unmarshal`: one value, nothing but whitespace after it. Objects are `Pairs`."""
    text = _text(raw)
    value, end = _DECODER.raw_decode(text, len(text) - len(text.lstrip(_BLANK)))
    rest = text[end:].lstrip(_BLANK)
    if rest:
        raise ValueError(f"invalid character {rest[0]!r} after top-level value")
    return value


def decode_first(raw: bytes) -> Any:
    """`json.NewDecoder(f).Decode(&v)`: the first value; whatever follows it is not read."""
    return first_value(_text(raw))[0]


def first_value(text: str) -> tuple[Any, int]:
    """`decode_first` of text already decoded, and the offset just past that value."""
    value, end = _DECODER.raw_decode(text, len(text) - len(text.lstrip(_BLANK)))
    return value, end


def members(value: Any) -> Pairs | None:
    """An object's members, or None when `value` is not an object."""
    return value if isinstance(value, Pairs) else None


def field(pairs: Pairs, name: str) -> list[Any]:
    """The values a struct field `name` receives, in order (the last one stands): its exact
    key and every key equal to it without regard to case, as Go matched them."""
    return [v for k, v in pairs if k == name or k.casefold() == name.casefold()]


def kind(value: Any) -> str:
    """What a JSON value is, in Go's words (`cannot unmarshal array into ...`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if members(value) is not None else "array"


def a_kind(value: Any) -> str:
    """`kind` with its article: "an array", "a string"."""
    name = kind(value)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"
