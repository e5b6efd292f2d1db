"""What a spec may cost to read. Each limit is checked before the work it bounds, and each
error names the limit it hit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

MAX_BYTES = 64 << 20  # the file; a spec of 100,000 published ports is about 10 MB
MAX_DEPTH = 32  # levels of nesting; a spec uses 5
MAX_NODES = 100_000  # values that aliases add: a spec written out has no need of more
MAX_EXPANDED_CHARS = MAX_BYTES  # characters of text values, once aliases are expanded
# Below this size PyYAML reads a whole file in well under a second; above, positions are
# found by skimming (see skim.py).
SMALL_TEXT = 256 << 10

# yaml-rs nests on the machine stack: 10,000 levels of block nesting overflow it and kill the
# process. Block nesting needs indentation or compact `- ` / `? ` indicators at the start of a
# line, so a line starting with fewer than DEEP_LEAD of those bounds it; yaml-rs itself stops
# flow nesting (`[[[`) at a few hundred levels. Anything else goes to PyYAML, which counts.
DEEP_LEAD = 128
_DEEP_LINE = re.compile(rb"\n[ \t?:-]{%d}" % DEEP_LEAD)
_ALIAS_PRECEDERS = frozenset(" \t\r\n[{,:")


def size_text(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def depth_message() -> str:
    return f"nested deeper than {MAX_DEPTH} levels, the limit for a spec"


def nodes_message() -> str:
    return f"aliases add more than {MAX_NODES:,} values, the limit for a spec"


def chars_message() -> str:
    return (
        f"aliases expand to more than {size_text(MAX_EXPANDED_CHARS)} of text, the limit for a spec"
    )


def fast_parser_may_read(text: str, raw: bytes) -> bool:
    """Whether yaml-rs can read `text` within the limits: no aliases (it would expand them
    before anything could count), and no nesting deep enough to exhaust its stack."""
    return (
        not has_alias(text)
        and _DEEP_LINE.search(b"\n" + raw[: DEEP_LEAD + 1]) is None
        and (_DEEP_LINE.search(raw) is None)
    )


def has_alias(text: str) -> bool:
    """An anchor or alias indicator where YAML allows one: `&a`, `*a` at the start of a node.
    Conservative: one in a comment or inside a plain value counts too."""
    for indicator in "&*":
        at = text.find(indicator)
        while at != -1:
            if at == 0 or text[at - 1] in _ALIAS_PRECEDERS:
                return True
            at = text.find(indicator, at + 1)
    return False


def too_deep(value: Any, limit: int = MAX_DEPTH) -> tuple[str | int, ...] | None:
    """The path to the first collection that nests more than `limit` levels, if any."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if len(path) >= limit and _children(item) is not None:
            return path
        if isinstance(item, dict):
            stack.extend((v, (*path, k)) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, (*path, i)) for i, v in reversed(list(enumerate(item))))
    return None


def _children(item: Any) -> Iterator[Any] | None:
    if isinstance(item, dict):
        return iter(item.values())
    if isinstance(item, list | tuple | set | frozenset):
        return iter(item)
    return None
