"""A fuzzer over spec files: the examples, mutated as a careless or hostile user would (wrong
types, huge numbers, unicode, control characters, deep nesting, duplicate and unknown keys,
flipped bytes, truncation, BOM and CRLF, aliases), each run through `reconcile validate`
in this process. Whatever the input: exit 0 or 1, every error line `SPEC[:LINE:COL]: ...`
in dockyard's words, no traceback, and a bounded time.

`make test` runs FUZZ_EXAMPLES (1,000) of them; `make fuzz` 10,000, and prints the count and
every failure rather than stopping at the first.
"""

from __future__ import annotations

import io
import os
import re
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
FUZZ_EXAMPLES = int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "1000"))
HARD_BOUND = 10.0  # seconds one validation may take before it counts as a failure
PYDANTIC_WORDS = ("Input should", "input_value", "errors.pydantic.dev", "validation error")

SCALARS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(
        [
            "1e400",
            ".nan",
            "-.inf",
            "~",
            "null",
            "yes",
            "0o777",
            "0x1F",
            "1_000",
            "2001-12-14",
            "2001-13-45",
            "'' ",
            "[]",
            "{}",
            "[[amd64]]",
            "{a: {b: {c: 1}}}",
            '"\\x07\\n\\u202e"',
            '"a\\nnameserver 192.0.2.9"',
            '"\\0"',
            "!!binary aGVsbG8=",
            "!!set {a}",
            "!!python/object:os.system x",
            "&a x",
            "*nope",
            "9" * 5000,
            "a" * 70000,
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    ),
    st.text(
        st.characters(whitelist_categories=("L", "N"), whitelist_characters=" -._/"), max_size=20
    ),
)


@dataclass
class Mutant:
    example: str
    steps: list[str] = field(default_factory=list)
    data: bytes = b""


@st.composite
def mutants(draw: st.DrawFn) -> Mutant:
    example = draw(st.sampled_from(EXAMPLES))
    text = example.read_text()
    mutant = Mutant(example.name)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(VALUE_MUTATIONS if draw(st.integers(0, 3)) else TEXT_MUTATIONS))
        text = kind(draw, text)
        mutant.steps.append(kind.__name__)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:  # most mutants stay text, to get past the parser
        kind = draw(st.sampled_from(BYTE_MUTATIONS))
        data = kind(draw, data)
        mutant.steps.append(kind.__name__)
    mutant.data = data
    return mutant


def _line(draw: st.DrawFn, text: str) -> int:
    return draw(st.integers(0, max(text.count("\n"), 0)))


def _lines(text: str) -> list[str]:
    return text.split("\n")


def replace_value(draw: st.DrawFn, text: str) -> str:
    lines = _lines(text)
    candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*-?\s*[\w]+:\s*\S", line)]
    if not candidates:
        return text
    i = draw(st.sampled_from(candidates))
    key = lines[i].split(":", 1)[0]
    lines[i] = f"{key}: {draw(SCALARS)}"
    return "\n".join(lines)


def insert_key(draw: st.DrawFn, text: str) -> str:
    lines = _lines(text)
    at = _line(draw, text)
    indent = " " * draw(st.sampled_from([0, 2, 4, 6]))
    key = draw(st.sampled_from(["colour", "netwrok", "root", "version", "bridge", "1", "? [a]"]))
    lines.insert(at, f"{indent}{key}: {draw(SCALARS)}")
    return "\n".join(lines)


def duplicate_line(draw: st.DrawFn, text: str) -> str:
    lines = _lines(text)
    at = _line(draw, text)
    lines.insert(at, lines[min(at, len(lines) - 1)])
    return "\n".join(lines)


def deep_nesting(draw: st.DrawFn, text: str) -> str:
    n = draw(st.sampled_from([5, 31, 32, 33, 200, 3000, 20000]))
    if draw(st.booleans()):
        return text + f"\nnested: {'[' * n}{']' * n}\n"
    return text + "\nnested:\n" + "- " * n + "x\n"


def block_nesting(draw: st.DrawFn, text: str) -> str:
    n = draw(st.sampled_from([10, 40, 300]))
    return text + "\nnested:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(n))


def aliases(draw: st.DrawFn, text: str) -> str:
    kind = draw(st.sampled_from(["share", "bomb", "self", "undefined"]))
    if kind == "share":
        return text + "\nx: &v [1, 2]\ny: *v\n"
    if kind == "self":
        return text + "\nx: &v [*v]\n"
    if kind == "undefined":
        return text + "\nx: *v\n"
    levels = draw(st.integers(2, 9))
    bomb = 'a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]\n'
    for n in range(1, levels):
        bomb += f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 10)}]\n"
    return text + "\n" + bomb


def control_character(draw: st.DrawFn, text: str) -> str:
    at = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(["\x00", "\x07", "\x1b", "\r", "\x7f", "\x85", "\ufeff", "\u2028"]))
    return text[:at] + char + text[at:]


def unicode(draw: st.DrawFn, text: str) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.text(min_size=1, max_size=8)) + text[at:]


def bom_and_crlf(draw: st.DrawFn, text: str) -> str:
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.replace("\n", "\r\n") if draw(st.booleans()) else text


def several_documents(draw: st.DrawFn, text: str) -> str:
    return text + draw(st.sampled_from(["\n---\nversion: 1\n", "\n...\n", "\n%YAML 1.2\n"]))


# What the spec's validation sees (most draws), and what its reading sees.
VALUE_MUTATIONS = [replace_value, replace_value, replace_value, insert_key, duplicate_line]
TEXT_MUTATIONS = [
    deep_nesting,
    block_nesting,
    aliases,
    control_character,
    unicode,
    bom_and_crlf,
    several_documents,
]


def flip_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        if out:
            out[draw(st.integers(0, len(out) - 1))] ^= draw(st.integers(1, 255))
    return bytes(out)


def truncate(draw: st.DrawFn, data: bytes) -> bytes:
    return data[: draw(st.integers(0, len(data)))]


BYTE_MUTATIONS = [flip_bytes, truncate]


@dataclass
class Tally:
    examples: int = 0
    slowest: float = 0.0
    slowest_steps: str = ""
    failures: list[str] = field(default_factory=list)


def check(mutant: Mutant, path: Path, tally: Tally) -> None:
    path.write_bytes(mutant.data)
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code: object = main(["validate", str(path)])
        except BaseException as e:  # any escape is what this looks for
            code = f"raised {type(e).__name__}: {e}"
    took = time.monotonic() - started
    tally.examples += 1
    if took > tally.slowest:
        tally.slowest, tally.slowest_steps = took, f"{mutant.example} {'+'.join(mutant.steps)}"
    problems = _problems(code, out.getvalue(), err.getvalue(), str(path), took)
    if problems:
        tally.failures.append(
            f"{mutant.example} {'+'.join(mutant.steps)}: {problems}; input {mutant.data[:300]!r}"
        )


def _problems(code: object, out: str, err: str, source: str, took: float) -> str | None:
    line = re.compile(rf"{re.escape(source)}(:\d+:\d+)?: \S.*")
    if took > HARD_BOUND:
        return f"took {took:.1f} s"
    if code == 0:
        return None if (out, err) == (f"{source}: valid\n", "") else f"valid, but said {err!r}"
    if code != 1:
        return f"exit {code!r}, stderr {err[-300:]!r}"
    if out or not err.endswith("\n"):
        return f"stdout {out!r}, stderr {err[-300:]!r}"
    for text in err[:-1].split("\n"):
        if not line.fullmatch(text):
            return f"not SPEC:LINE:COL: {text[:300]!r}"
        if any(words in text for words in PYDANTIC_WORDS):
            return f"pydantic's words: {text[:300]!r}"
    return None


def test_validate_survives_mutated_examples(tmp_path: Path) -> None:
    tally = Tally()
    path = tmp_path / "spec.yaml"

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutants())
    def run(mutant: Mutant) -> None:
        check(mutant, path, tally)

    run()
    print(
        f"\nspec fuzzer: {tally.examples} examples, {len(tally.failures)} failures, "
        f"slowest {tally.slowest:.2f} s ({tally.slowest_steps})"
    )
    for failure in tally.failures:
        print(f"  {failure}")
    assert tally.failures == []
    assert tally.examples >= FUZZ_EXAMPLES // 2  # hypothesis may stop early on a tiny space
