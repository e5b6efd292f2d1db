"""A large spec that differs from the newest kept one only in a few entries of
network.published_ports (one changed mapping among 100,000) is read by reading those entries
alone: at 100,000 ports about 0.14 s instead of 0.8 s (bench/spec_incremental.py).

The newest spec kept (`kept`) is kept with its bytes and where its published ports stand
(`Items`), in one more file of the same directory, BASE, under the same checks (a private
directory and file, its own SHA-256; the spec itself is found by `kept.get` of those bytes,
so under a key that covers the code). It costs the spec file's size on disk (10 MB at
100,000 ports; one file, the newest, replaced each time) and, on the thread that keeps,
about 15 ms to write, plus 0.1-0.15 s to find where the ports stand after a whole-file read
(a regular expression over every line of the sequence); a spec read this way carries them
over. They are found only in a file yaml-rs read, where the text before the first entry
reads as ending with the key network.published_ports and every line of the sequence is of
the plainest form (`_line`: `- key: value`, `key: value`, a comment or a blank line): each
entry is then told by its `- ` line alone.

A new spec's bytes are compared with the kept ones: the lines that differ, widened to whole
entries, must lie within that sequence, and their new text must be entries of the plainest
form (no anchor, alias, tag, flow collection, multi-line or block scalar, directive or
document marker: nothing the rest of the file could read differently). Those entries are
read by yaml-rs, validated as the whole spec validates them, put in place of the old ones in
the kept spec (the other values are shared with it, unchanged), and the rules that tie
fields together run on what can have changed (`rules.still_valid`). Anything else, and any
error at all, is answered None: the caller reads the whole file, which finds every problem
afresh with its position. The answer equals what reading the whole file gives, fields set
included (tests/unit/test_spec_incremental.py checks it against that on generated specs and
edits).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.spec import kept, limits, rules
from dockyard.spec.model import Network, Spec
from dockyard.spec.reading import _has_control
from dockyard.state import cachedir, safepath

PATH = ("network", "published_ports")
# At most this share of the file (and at least MIN_REGION bytes) is read as changed entries;
# a larger change is read whole, as the rules for the whole file are then no dearer.
SHARE = 8
MIN_REGION = 64 << 10
BASE = "newest.base"
_MAGIC = b"dockyard-base-1\n"
_HEADER = struct.Struct("<4Q")
_DIGEST = hashlib.sha256().digest_size

# The plainest entries: `- key: value` at the sequence's column, `key: value` two columns
# further, comments and blank lines; a value is a plain token or a one-line quoted string.
_KEY = rb"(?:[A-Za-z_][A-Za-z0-9_]*|\"[A-Za-z_][A-Za-z0-9_]*\"|'[A-Za-z_][A-Za-z0-9_]*')"
_VALUE = (
    rb"(?:-?[A-Za-z0-9_.+/](?:[A-Za-z0-9_.:+/-]*[A-Za-z0-9_.+/-])?"
    rb"|\"(?:[^\"\\\n]|\\[^\n])*\"|'(?:[^'\n]|'')*')"
)
_REST = rb"(?: +#[^\n]*)? *"
_PAIR = _KEY + rb": +" + _VALUE + _REST
_NOTHING = rb"(?: *(?:#[^\n]*)?\n)*"  # comments and blank lines


@dataclass(frozen=True)
class Items:
    """Where the block sequence network.published_ports stands, in the file's bytes: its
    first entry's line, its end, its column, and how many entries it has; every entry's line
    starts with `- ` at the column, and nothing else in it does."""

    start: int
    end: int
    col: int
    count: int

    def needle(self) -> bytes:
        return b"\n" + b" " * self.col + b"- "


@dataclass(frozen=True)
class Base:
    raw: bytes
    spec: Spec
    items: Items


def items_of(raw: bytes, spec: Spec) -> Items | None:
    """Where the published ports stand in `raw`, which yaml-rs read and validated as `spec`
    (the whole file read); None unless every line of the sequence is of the plainest form, so
    that each entry is told by its `- ` line alone, and nothing before the sequence can make
    it anything but the value of network.published_ports."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not limits.fast_parser_may_read(text.removeprefix("\ufeff"), raw):
        return None  # PyYAML reads it: its reading of an entry may differ from yaml-rs's
    from dockyard.spec import skim  # PyYAML's import: only on the thread that keeps

    found = skim.entries_start(text, PATH)
    if found is None or not _opens_the_sequence(text[: found[0]]):
        return None
    start, col = found
    if not text.isascii():
        start = len(text[:start].encode())
    end = _plain_until(raw, start, col)
    if end is None:
        return None
    items = Items(start, end, col, len(spec.network.published_ports))
    needle = items.needle()
    if not raw.startswith(needle, start - 1) or raw.count(needle, start - 1, end) != items.count:
        return None
    return items


def _opens_the_sequence(before: str) -> bool:
    """Whether yaml-rs reads the text before the first entry as ending with the key
    network.published_ports, with nothing after it yet: the first entry's line is then where
    that value starts (and not, say, a line inside a quoted text)."""
    from dockyard.spec.loader import _fast  # on a stack of its own, as for the whole file

    data = _fast(before)
    if not isinstance(data, dict) or not data or list(data)[-1] != "network":
        return False
    network = data["network"]
    return (
        isinstance(network, dict)
        and list(network)[-1:] == ["published_ports"]
        and network["published_ports"] is None
    )


def _plain_until(raw: bytes, start: int, col: int) -> int | None:
    """Where the plainest lines from `start` end (see `_line`), if the line there ends a
    sequence at `col`: a line less indented, or at `col` and not an entry."""
    found = re.compile(rb"\n(?!" + _line(col) + rb"\n)").search(raw, start - 1)
    if found is None:
        return len(raw) if raw.endswith(b"\n") else None
    end = found.start() + 1
    if end == len(raw):
        return end
    line_end = raw.find(b"\n", end)
    line = raw[end : len(raw) if line_end == -1 else line_end]
    indent = len(line) - len(line.lstrip(b" "))
    if line[indent : indent + 1] in (b"", b"\t", b"\r", b"#"):
        return None  # not a line of content
    return end if indent < col or (indent == col and line[indent] != ord("-")) else None


@functools.cache
def _line(col: int) -> bytes:
    """One line of the plainest form in a sequence at `col`, without its line feed: an entry's
    first `key: value`, one of its further ones, a comment or a blank line."""
    indent = b" " * col
    return rb"(?:%b- %b|%b  %b| *(?:#[^\n]*)?)" % (indent, _PAIR, indent, _PAIR)


def derive(base: Base, raw: bytes) -> tuple[Spec, Items] | None:
    """The spec `raw` holds, made from `base` when they differ only in whole entries of its
    published ports and the new ones are of the plainest form; None otherwise."""
    items, old = base.items, base.raw
    ports = base.spec.network.published_ports
    if len(ports) != items.count or old == raw:
        return None
    first, last = _changed_lines(old, raw)
    if first < items.start or last > items.end:
        return None  # the change starts or ends outside the entries
    needle = items.needle()
    # Widened to whole entries: from the start of the entry the first change is in, to the
    # start of the first entry after the last change (or the sequence's end).
    opening = old.rfind(needle, items.start - 1, first - 1 + len(needle))
    if opening == -1:
        return None
    region = opening + 1
    closing = old.find(needle, max(last, region) - 1, items.end)
    old_end = items.end if closing == -1 else closing + 1
    new_end = old_end + len(raw) - len(old)
    if max(old_end, new_end) - region > max(MIN_REGION, len(raw) // SHARE):
        return None
    before = old.count(needle, items.start - 1, opening)
    removed = old.count(needle, opening, old_end - 1) if old_end > region else 0
    added = _entries(raw[region:new_end], items.col)
    if added is None:
        return None
    count = items.count - removed + len(added)
    if count == 0:
        return None  # `published_ports:` with nothing under it is null, not []
    try:
        valid = Network.model_validate({"published_ports": added}).published_ports
    except Exception:
        return None
    new_ports = [*ports[:before], *valid, *ports[before + removed :]]
    network = base.spec.network.model_copy(update={"published_ports": new_ports})
    spec = base.spec.model_copy(update={"network": network})
    if not rules.still_valid(spec, valid):
        return None
    # Comment lines put before the first entry are not part of the sequence's entries.
    start = raw.find(needle, items.start - 1) + 1 if region == items.start else items.start
    return spec, Items(start, items.end + len(raw) - len(old), items.col, count)


def _entries(region: bytes, col: int) -> list[Any] | None:
    """The entries `region` holds, read by yaml-rs; None unless it is entries of the plainest
    form (see the module's description) and yaml-rs reads as many as it has `- ` lines."""
    indent = b" " * col
    if not region:
        return []
    try:
        text = region.decode("utf-8")  # the whole file must be UTF-8: so must what changed
    except UnicodeDecodeError:
        return None
    if (
        not region.endswith(b"\n")
        or re.fullmatch(rb"(?:" + _line(col) + rb"\n)*", region) is None
        or _has_control(region)
        or not limits.fast_parser_may_read("\n" + text, b"\n" + region)
    ):
        return None
    count = region.count(b"\n" + indent + b"- ") + region.startswith(indent + b"- ")
    if count == 0:  # comments and blank lines only, or `key: value` lines of the entry before
        return [] if re.fullmatch(_NOTHING, region) else None
    if not re.match(_NOTHING + indent + b"- ", region):
        return None  # a `key: value` before the first entry would belong to the one before
    try:
        import yaml_rs

        data = yaml_rs.loads(text)
    except BaseException:  # pyo3 turns a panic into a BaseException
        return None
    if not isinstance(data, list) or len(data) != count:
        return None
    return data


def _changed_lines(old: bytes, new: bytes) -> tuple[int, int]:
    """The lines of `old` that `new` does not have as they are, from where the first starts
    to where the line after the last starts: the bytes before are where `new` starts with,
    those after what it ends with."""
    shortest, old_size, new_size = min(len(old), len(new)), len(old), len(new)
    head = _common(shortest, lambda a, b: old.startswith(new[a:b], a))
    first = old.rfind(b"\n", 0, head) + 1
    tail = _common(
        shortest - first,
        lambda a, b: old.endswith(new[new_size - b : new_size - a], 0, old_size - a),
    )
    last = old_size - tail
    if 0 < last < old_size and old[last - 1] != ord("\n"):
        last = old.find(b"\n", last) + 1 or old_size
    return first, last


def _common(limit: int, same: Callable[[int, int], bool]) -> int:
    """The largest n <= limit for which the first n bytes are the same, where same(a, b)
    compares bytes a to b once those before a are known to be: in steps that double, then
    halving, each a C-level comparison of the bytes not compared yet."""
    step, low = 4096, 0
    while low < limit:
        high = min(low + step, limit)
        if not same(low, high):
            break
        low, step = high, step * 2
    else:
        return low
    while high - low > 1:
        mid = (low + high) // 2
        if same(low, mid):
            low = mid
        else:
            high = mid
    return low


def _stored() -> tuple[bytes, Items] | None:
    """The newest kept spec's bytes and where its published ports stand, checked."""
    where = cachedir.directory()
    if where is None:
        return None
    tree = safepath.Tree(where)
    try:
        if not cachedir.private(tree.stat(""), "directory") or not cachedir.private(
            tree.stat(BASE), "file"
        ):
            return None
        data = tree.read(BASE, limit=limits.MAX_BYTES + (1 << 20))
    except (OSError, ValueError, safepath.Unsafe, safepath.TooLarge):
        return None
    if data is None or not data.startswith(_MAGIC):
        return None
    digest = data[len(_MAGIC) : len(_MAGIC) + _DIGEST]
    payload = memoryview(data)[len(_MAGIC) + _DIGEST :]
    if hashlib.sha256(payload).digest() != digest or len(payload) < _HEADER.size:
        return None
    return bytes(payload[_HEADER.size :]), Items(*_HEADER.unpack_from(payload))


def from_kept(raw: bytes) -> tuple[Spec, Items] | None:
    """The spec in `raw` made from the newest kept one (`derive`), or None. Where the change
    lies is found before the kept spec is unpickled (about 60 ms at 100,000 ports): a spec
    changed outside its published ports is read whole without that cost."""
    if len(raw) < kept.FROM or cachedir.directory() is None:
        return None
    stored = _stored()
    if stored is None or not _within_entries(*stored, raw):
        return None
    old, items = stored
    spec = kept.get(old)
    return None if spec is None else derive(Base(old, spec, items), raw)


def _within_entries(old: bytes, items: Items, raw: bytes) -> bool:
    if old == raw:
        return False
    first, last = _changed_lines(old, raw)
    return items.start <= first and last <= items.end


def keep_base(raw: bytes, spec: Spec, items: Items | None, yaml_rs_read: bool = True) -> None:
    """Keep `raw` as the spec to start from next time (on the thread `kept.put` writes on).
    `items` is None when the whole file was read: they are found here, if yaml-rs read it."""
    where = cachedir.directory()
    if where is None or len(raw) < kept.FROM:
        return
    if items is None and yaml_rs_read:
        items = items_of(raw, spec)
    with contextlib.suppress(OSError, ValueError, safepath.Unsafe):
        tree = safepath.Tree(where)
        if not cachedir.private(tree.stat(""), "directory"):
            return
        if items is None:  # the one kept before must not stand for this one
            tree.unlink(BASE)
            return
        payload = _HEADER.pack(items.start, items.end, items.col, items.count) + raw
        tree.write(BASE, _MAGIC + hashlib.sha256(payload).digest() + payload, 0o600)
