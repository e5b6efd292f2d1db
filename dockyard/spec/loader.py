"""Reading a spec: YAML with the position of every value, so that each error names its line.

Every problem in a file is reported at once, sorted by position, as `file:line:col: field:
what is wrong`; the rules that tie fields together run on the fields that are valid.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from typing_extensions import is_typeddict

from dockyard.errors import SpecError
from dockyard.spec import duplicates, incremental, kept, limits, messages, rules
from dockyard.spec.model import Spec
from dockyard.spec.partial import ROUNDS, Partial, value_at
from dockyard.spec.reading import check_characters, decoded, read_bytes, too_large
from dockyard.spec.wording import key_text, shown

Location = tuple[str | int, ...]
Place = tuple[int, int]
Locate = Callable[[Location, bool], Place | None]

if TYPE_CHECKING:
    from dockyard.spec.positions import Positions

# yaml-rs recurses on the stack of the thread it runs in; its own, this size, whatever the
# process's `ulimit -s`. Only touched pages cost memory.
PARSER_STACK = 64 << 20


@dataclass
class Document:
    """The parsed YAML and, on demand, where each value stands in the file."""

    source: str
    text: str
    data: Any
    positions: Positions | None = None
    _locate: Locate | None = field(default=None, repr=False)

    def place(self, loc: Location, key: bool = False) -> Place | None:
        """(line, col) of the value at `loc` (or of its key), or of its nearest ancestor."""
        if self._locate is None:
            self._locate = self._locator()
        return self._locate(loc, key)

    def where(self, loc: Location, key: bool = False) -> str:
        found = self.place(loc, key)
        return f"{self.source}:{found[0]}:{found[1]}" if found else self.source

    def _locator(self) -> Locate:
        if self.positions is not None:
            return self.positions.of
        if len(self.text) > limits.SMALL_TEXT:
            from dockyard.spec.skim import Skim

            return Skim(self.text, self.data, self._whole).of
        return self._whole()

    def _whole(self) -> Locate:
        """Positions from PyYAML reading the whole text; none if it cannot (it reads YAML 1.1,
        yaml-rs 1.2, and they disagree on a few corners)."""
        import yaml

        from dockyard.spec.positions import Positions

        try:
            return Positions.of_text(self.text).of
        except (yaml.YAMLError, RecursionError, ValueError):
            return lambda loc, key: None


def load(path: Path | str) -> Spec:
    """The validated spec in `path`; every problem is reported at once, as file:line:col. A
    large spec validated before from the same bytes is taken as kept (`kept`)."""
    path = Path(path)
    raw = read_bytes(path)
    found = kept.get(raw)
    if found is not None:
        return found
    changed = incremental.from_kept(raw)
    if changed is not None:
        spec, items = changed
        kept.put(raw, spec, lambda: incremental.keep_base(raw, spec, items))
        return spec
    doc = parse(decoded(raw, path), str(path))
    whole = validate(doc)
    # Read by yaml-rs (PyYAML reads with positions): where its ports stand is found later.
    fast = doc.positions is None
    kept.put(raw, whole, lambda: incremental.keep_base(raw, whole, None, fast))
    return whole


def load_text(text: str, source: str = "<spec>") -> Spec:
    return validate(parse(text, source))


def parse(text: str, source: str) -> Document:
    """The spec's data. A large spec (100,000 published ports) takes PyYAML seconds to read, so
    the data comes from yaml-rs, a YAML 1.2 parser in Rust, 16 times faster here, whenever it
    can read the text within the limits; PyYAML reads the rest, and any file that is wrong, to
    say where."""
    text = text.removeprefix("\ufeff")
    if len(text) > limits.MAX_BYTES:
        raise SpecError([too_large(source)])
    check_characters(text, source)
    if limits.fast_parser_may_read(text, text.encode()):
        data = _fast(text)
        if isinstance(data, dict):
            return Document(source, text, data)
        if isinstance(data, Exception) and len(text) > limits.SMALL_TEXT:
            _refuse_located(data, source, text)
    return _careful(text, source)


def _fast(text: str) -> Any:
    """yaml-rs's reading of `text`, or the exception it raised (a Rust panic included)."""
    try:
        import yaml_rs
    except ImportError:  # pragma: no cover - a dependency, but PyYAML can do the job alone
        return None
    result: list[Any] = [None]

    def run() -> None:
        try:
            result[0] = yaml_rs.loads(text)  # duplicate keys are an error here too
        except BaseException as e:  # pyo3 turns a panic into a BaseException
            result[0] = e if isinstance(e, Exception) else RuntimeError(str(e))

    previous = threading.stack_size(PARSER_STACK)
    try:
        worker = threading.Thread(target=run, name="yaml-rs", daemon=True)
        worker.start()
    finally:
        threading.stack_size(previous)
    worker.join()
    return result[0]


_YAML_RS_PLACE = re.compile(r"at line (\d+), column (\d+)")


def _refuse_located(error: Exception, source: str, text: str) -> None:
    """yaml-rs's own report of a syntax error, on one line, or the duplicate key it names,
    found in the text: for a large file, where PyYAML would take seconds to say the same."""
    key = duplicates.key_of(str(error))
    if key is not None:
        twice = duplicates.locate(text, key, source, _fast)
        if twice:
            raise SpecError(twice)
        return
    lines = str(error).strip().splitlines()
    found = _YAML_RS_PLACE.search(lines[0]) if lines else None
    if found is None:
        return
    problem = " ".join(lines[-1].split()) if len(lines) > 1 else "syntax error"
    raise SpecError([f"{source}:{found[1]}:{found[2]}: invalid YAML: {problem}"])


def _careful(text: str, source: str) -> Document:
    from dockyard.spec.positions import careful_parse

    data, positions = careful_parse(text, source)
    return Document(source, text, data, positions)


def validate(doc: Document) -> Spec:
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as e:
        raise SpecError(_problems(doc, e.errors(include_url=False))) from None
    problems = rules.check(spec)
    if problems:
        raise SpecError(_sorted(doc, [Found(loc, message) for loc, message in problems]))
    return spec


@dataclass(frozen=True)
class Found:
    """One problem: the field it is about, and the message; `at` is where to point when
    that is not the field's value (its key, or a value deep inside it)."""

    loc: Location
    message: str
    at: Location | None = None
    key: bool = False


def _problems(doc: Document, errors: list[Any]) -> list[str]:
    found = [_describe(err) for err in errors]
    locs = [_data_loc(err) for err in errors]
    found += _too_deep(doc, locs)
    partial = _valid_part(doc.data, locs)
    if partial is not None:
        spec, fields = partial
        found += [Found(fields.original(loc), m) for loc, m in rules.check(spec, fields)]
    return _sorted(doc, found)


def _sorted(doc: Document, found: list[Found]) -> list[str]:
    """The problems in file order, the first SHOWN_PROBLEMS of them and a count of the rest:
    a spec of 100,000 bad ports has 100,000 problems, and nobody reads past the first."""
    more = len(found) - SHOWN_PROBLEMS
    if more > 0:
        order = DataOrder(doc.data)
        found = sorted(found, key=lambda f: order.of(f.at or f.loc))[:SHOWN_PROBLEMS]
    placed = [(doc.place(f.at or f.loc, f.key), n, f) for n, f in enumerate(found)]
    placed.sort(key=lambda p: (p[0] or (0, 0), p[1]))
    out = []
    for at, _, f in placed:
        where = f"{doc.source}:{at[0]}:{at[1]}" if at else doc.source
        out.append(f"{where}: {_dotted(f.loc)}: {f.message}")
    if more > 0:
        out.append(f"{doc.source}: {more:,} more problems")
    return out


SHOWN_PROBLEMS = 1000


class DataOrder:
    """A sort key for locations that follows the file without looking at it: parsers keep
    mappings in the order the file has them, so a location's rank among its siblings, level
    by level, is its place in the file."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self._ranks: dict[int, dict[Any, int]] = {}

    def of(self, loc: Location) -> tuple[int, ...]:
        out: list[int] = []
        node = self.data
        for part in loc:
            if isinstance(node, dict) and part in node:
                ranks = self._ranks.get(id(node))
                if ranks is None:
                    ranks = self._ranks[id(node)] = {k: i for i, k in enumerate(node)}
                out.append(ranks[part])
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                out.append(part)
            else:
                break
            node = node[part]
        return tuple(out)


def _describe(err: Mapping[str, Any]) -> Found:
    loc: Location = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        return Found(loc, _unknown_field(loc), key=True)
    if err["type"] == "invalid_key":
        message = f"a key must be a name, got {shown(err.get('input'))}"
        return Found(loc[:-1], message, at=_data_loc(err), key=True)
    return Found(loc, messages.describe(err))


def _data_loc(err: Mapping[str, Any]) -> Location:
    """Where the error stands in the data: pydantic puts a key that is not text (`1:`,
    `? [a]`) in the location as its repr."""
    loc: Location = tuple(err["loc"])
    key = err.get("input")
    if err["type"] == "invalid_key" and isinstance(key, str | int) and not isinstance(key, bool):
        return (*loc[:-1], key)
    return loc


def _too_deep(doc: Document, locs: list[Location]) -> list[Found]:
    """Nesting beyond the limit, under the values pydantic refused (a valid spec nests 5
    levels, so anything deeper was refused somewhere above it)."""
    out = []
    for loc in dict.fromkeys(locs):
        value = value_at(doc.data, loc)
        below = limits.too_deep(value, max(limits.MAX_DEPTH - len(loc), 0))
        if below is not None:
            out.append(Found(loc, limits.depth_message(), at=(*loc, *below)))
    return out


def _valid_part(data: Any, locs: list[Location]) -> tuple[Spec, Partial] | None:
    """The spec with the invalid values taken out, to run the rules on; None if it does not
    settle within a few rounds."""
    partial = Partial({**data, "version": 1})
    for round_number in range(ROUNDS):
        partial.without(locs, first_round=round_number == 0)
        try:
            return Spec.model_validate(partial.data), partial
        except ValidationError as e:
            locs = [tuple(err["loc"]) for err in e.errors(include_url=False, include_input=False)]
    return None


def _dotted(loc: Location) -> str:
    out = ""
    for part in loc:
        out += (
            f"[{part}]"
            if isinstance(part, int)
            else (f".{key_text(part)}" if out else key_text(part))
        )
    return out or "(top level)"


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
