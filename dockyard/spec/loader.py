"""Reading a spec file: YAML with the position of every value, so that each error names its line."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from typing_extensions import is_typeddict

from dockyard.errors import SpecError
from dockyard.spec import rules
from dockyard.spec.model import Spec
from dockyard.spec.types import IPV4_PATTERN, PORT_RANGE

Location = tuple[str | int, ...]

if TYPE_CHECKING:
    from dockyard.spec.positions import Positions


@dataclass
class Document:
    """The parsed YAML and, on demand, where each value stands in the file."""

    source: str
    text: str
    data: Any
    _positions: Positions | None = None

    def where(self, loc: Location, key: bool = False) -> str:
        """`file:line:col` of the value at `loc`, or of its nearest ancestor that exists."""
        if self._positions is None:
            from dockyard.spec.positions import Positions

            self._positions = Positions(self.text, self.source)
        return self._positions.of(loc, key)


def read_text(path: Path) -> str:
    """The file's text, or a one-line SpecError saying why it cannot be read."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise SpecError([f"{path}: is a directory, not a spec file"]) from None
    except PermissionError:
        raise SpecError([f"{path}: permission denied"]) from None
    except OSError as e:
        raise SpecError([f"{path}: cannot read: {os.strerror(e.errno or 0)}"]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(
            [f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})"]
        ) from None


def parse(text: str, source: str) -> Document:
    """The spec's data. A large spec (100,000 published ports) takes PyYAML seconds to read, so
    the data comes from yaml-rs, a YAML 1.2 parser in Rust, 16 times faster here; PyYAML reads
    the file only when something is wrong with it, to say where."""
    data = _fast(text)
    if isinstance(data, dict):
        return Document(source, text, data)
    return _careful(text, source)


def _fast(text: str) -> Any:
    try:
        import yaml_rs
    except ImportError:  # pragma: no cover - a dependency, but PyYAML can do the job alone
        return None
    try:
        return yaml_rs.loads(text)  # duplicate keys are an error here too
    except Exception:
        return None


def _careful(text: str, source: str) -> Document:
    from dockyard.spec.positions import careful_parse

    data, positions = careful_parse(text, source)
    return Document(source, text, data, positions)


def load(path: Path | str) -> Spec:
    """The validated spec in `path`; every problem is reported at once, as file:line:col."""
    path = Path(path)
    return validate(parse(read_text(path), str(path)))


def load_text(text: str, source: str = "<spec>") -> Spec:
    return validate(parse(text, source))


def validate(doc: Document) -> Spec:
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as e:
        raise SpecError(
            [_describe(doc, err) for err in e.errors(include_url=False, include_input=True)]
        ) from None
    problems = rules.check(spec)
    if problems:
        raise SpecError(
            [f"{doc.where(loc)}: {_dotted(loc)}: {message}" for loc, message in problems]
        )
    return spec


def _dotted(loc: Location) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(doc: Document, err: Mapping[str, Any]) -> str:
    loc: Location = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{doc.where(loc, key=True)}: {_dotted(loc)}: {_unknown_field(loc)}"
    if kind == "missing":
        return f"{doc.where(loc)}: {_dotted(loc)}: is required"
    message = err["msg"]
    if kind == "literal_error" and "input" in err:
        message = f"{message}, got {err['input']!r}"
    ctx = err.get("ctx") or {}
    if ctx.get("pattern") == IPV4_PATTERN:
        message = f"must be an IPv4 address such as 172.17.0.2, got {err['input']!r}"
    if (kind, ctx.get("ge"), ctx.get("le")) in (
        ("greater_than_equal", PORT_RANGE[0], None),
        ("less_than_equal", None, PORT_RANGE[1]),
    ):
        message = f"must be a port number from 1 to 65535, got {err['input']!r}"
    return f"{doc.where(loc)}: {_dotted(loc)}: {message}"


def _unknown_field(loc: Location) -> str:
    fields = _fields(Spec)
    for part in loc[:-1]:
        if fields is None or isinstance(part, int):
            continue
        annotation = fields.get(str(part))
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        fields = next((f for f in map(_fields, candidates) if f is not None), None)
    if fields is None:
        return "unknown field"
    known = list(fields)
    guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    return f"unknown field; {hint}expected one of: {', '.join(known)}"


def _fields(annotation: Any) -> dict[str, Any] | None:
    """The fields of a model or of a TypedDict, by name; None for anything else."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: info.annotation for name, info in annotation.model_fields.items()}
    if is_typeddict(annotation):
        return dict(annotation.__annotations__)
    return None
