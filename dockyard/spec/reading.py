"""Reading a spec file as a root-run tool must: without blocking, a regular file only, at most
MAX_BYTES, UTF-8; and text with a control character anywhere is refused before any parser."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from dockyard.errors import SpecError
from dockyard.spec.limits import MAX_BYTES, size_text
from dockyard.state import safepath

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}
# Tab and line feed are YAML's own; carriage return only before a line feed (CRLF files).
_ALLOWED_ASCII = bytes([9, 10, 13, *range(32, 127), *range(128, 256)])
# C1 controls (U+0080-U+009F) and the noncharacters U+FFFE/U+FFFF, as UTF-8.
_NON_ASCII_CONTROL = re.compile(rb"\xc2[\x80-\x9f]|\xef\xbf[\xbe\xbf]")
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]|\r(?!\n)")
SHOWN_CONTROLS = 20


def decoded(raw: bytes, path: Path) -> str:
    """The file's text, or a SpecError saying why it cannot be a spec."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(
            [f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})"]
        ) from None
    return text.removeprefix("\ufeff")


def read_bytes(path: Path) -> bytes:
    try:
        return safepath.read_file(path, MAX_BYTES)
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except PermissionError:
        raise SpecError([f"{path}: permission denied"]) from None
    except safepath.NotRegular as e:
        kind = stat.S_IFMT(e.mode)
        if kind == stat.S_IFDIR:
            raise SpecError([f"{path}: is a directory, not a spec file"]) from None
        what = _KINDS.get(kind, "not a regular file")
        raise SpecError([f"{path}: is {what}; a spec must be a regular file"]) from None
    except safepath.TooLarge:
        raise SpecError([too_large(path)]) from None
    except OSError as e:
        raise SpecError([f"{path}: cannot read: {os.strerror(e.errno or 0)}"]) from None


def too_large(path: Path | str) -> str:
    return f"{path}: larger than {size_text(MAX_BYTES)}, the limit for a spec file"


def check_characters(text: str, source: str) -> None:
    try:
        refused = _has_control(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: only a caller's str can hold one
        refused = True
    if refused:
        raise SpecError(refused_characters(text, source))


def _has_control(raw: bytes) -> bool:
    """Cheap enough for a 10 MB spec: one C-level pass, and a second only for non-ASCII text."""
    left = raw.translate(None, _ALLOWED_ASCII)
    if left or (b"\r" in raw and raw.count(b"\r") != raw.count(b"\r\n")):
        return True
    return not raw.isascii() and _NON_ASCII_CONTROL.search(raw) is not None


def refused_characters(text: str, source: str) -> list[str]:
    """One line per refused character (the first SHOWN_CONTROLS of them), with its place."""
    found = list(_REFUSED.finditer(text))
    out = []
    for m in found[:SHOWN_CONTROLS]:
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        out.append(
            f"{source}:{line}:{col}: {character_name(m.group()[0])} is not allowed in a spec"
        )
    if len(found) > SHOWN_CONTROLS:
        out.append(f"{source}: {len(found) - SHOWN_CONTROLS} more such characters")
    return out


def character_name(char: str) -> str:
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"control character U+{code:04X}"
    return f"character U+{code:04X}"
