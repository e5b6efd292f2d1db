"""How a value from a spec is quoted in a message: short, on one line, escaped."""

from __future__ import annotations

import math
from typing import Any

SHOWN_CHARS = 60


def shown(value: Any) -> str:
    """`'docker0'`, `70000`, `true`, `null`, `a list`: what the user wrote, never more than a
    line; control characters escaped, so a message cannot add lines or move the cursor."""
    if isinstance(value, str):
        if len(value) > SHOWN_CHARS:
            return f"{value[:SHOWN_CHARS]!r}... ({len(value):,} characters)"
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        # Python refuses to print an int of more than 4,300 digits.
        return str(value) if value.bit_length() < 128 else "a number too large to use"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a value of type {type(value).__name__}"


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)


def key_text(key: Any) -> str:
    """A mapping key in a field path: as written when it is a plain name, else quoted."""
    if isinstance(key, str) and key and all(c.isalnum() or c in "_-" for c in key):
        return key if key.isascii() else repr(key)
    return shown(key)
