"""Loading limits: no spec file can hang dockyard, exhaust its memory or crash the YAML parser.
Each limit is checked before the work it bounds and has a message that names it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import SpecError
from dockyard.spec import limits, load, load_text
from dockyard.spec import loader as spec_loader

# The issue asks for these to finish in under 2 s; a test fails only past this generous bound,
# as no test here may fail on a busy machine's timing.
HARD_BOUND = 10.0
ALIAS_BOMB = 'version: 1\na: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{n}: &{n} [{','.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def validate_in_a_process(path: Path | str) -> tuple[int, str, float]:
    """`reconcile validate PATH` as its own process, so that a hang or a crash of the parser
    cannot take the test run with it."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=HARD_BOUND,
    )
    return result.returncode, result.stderr, time.monotonic() - started


def test_dev_zero_is_refused_unread() -> None:
    code, err, took = validate_in_a_process("/dev/zero")
    assert (code, err) == (1, "/dev/zero: is a character device; a spec must be a regular file\n")
    assert took < HARD_BOUND


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    code, err, took = validate_in_a_process(fifo)
    assert (code, err) == (1, f"{fifo}: is a FIFO; a spec must be a regular file\n")
    assert took < HARD_BOUND


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    """Ten aliases to ten aliases, nine levels deep: 10^9 values from ten lines."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(ALIAS_BOMB)
    code, err, took = validate_in_a_process(spec)
    assert (code, err) == (
        1,
        f"{spec}:2:4: aliases add more than 100,000 values, the limit for a spec\n",
    )
    assert took < HARD_BOUND


def test_a_long_text_aliased_many_times_is_refused(tmp_path: Path) -> None:
    """A 1 MB string aliased 2,000 times: 2 GB once expanded (yaml-rs would build it)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"version: 1\nx: &s {'a' * 1_000_000}\ny: [{','.join(['*s'] * 2000)}]\n")
    code, err, took = validate_in_a_process(spec)
    assert (code, err) == (
        1,
        f"{spec}:2:4: aliases expand to more than 64 MiB of text, the limit for a spec\n",
    )
    assert took < HARD_BOUND


def test_a_few_aliases_are_fine() -> None:
    spec = load_text("version: 1\ndns:\n  servers: &dns [192.0.2.1]\n  fallback: *dns\n")
    assert spec.dns.servers == spec.dns.fallback


def test_an_alias_to_itself_is_refused() -> None:
    with pytest.raises(SpecError) as e:
        load_text("version: 1\nx: &a [1, *a]\n", "spec.yaml")
    assert e.value.problems == ["spec.yaml:2:4: an alias refers to itself"]


def test_compact_nesting_that_overflows_yaml_rs_stack_is_refused(tmp_path: Path) -> None:
    """16,000 nested `- ` on one line kill a process that hands them to yaml-rs (a stack
    overflow, not a catchable error): such text goes to PyYAML, which stops at its limit."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nx:\n" + "- " * 16000 + "a\n")
    code, err, took = validate_in_a_process(spec)
    assert code == 1
    assert err.endswith(": nested deeper than 32 levels, the limit for a spec\n")
    assert err.count("\n") == 1
    assert took < HARD_BOUND


def test_deep_block_nesting_is_one_line_with_the_limit() -> None:
    text = "version: 1\nx:\n" + "".join(" " * (i + 1) + "- \n" for i in range(3000))
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    assert e.value.problems == [
        "spec.yaml:1001:1000: nested deeper than 32 levels, the limit for a spec"
    ]


def test_flow_nesting_beyond_the_limit_is_named() -> None:
    text = "version: 1\nx: " + "[" * 40 + "]" * 40 + "\n"
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    assert e.value.problems == [
        "spec.yaml:2:1: x: unknown field; expected one of: version, root, pidfile, state_dir, "
        "selinux, preflight, network, dns, storage, exec",
        "spec.yaml:2:35: x: nested deeper than 32 levels, the limit for a spec",
    ]


def test_nesting_at_the_limit_is_only_an_unknown_field() -> None:
    text = "version: 1\nx: " + "[" * 31 + "]" * 31 + "\n"
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    assert [p.split(": ", 2)[1] for p in e.value.problems] == ["x"]


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    with spec.open("wb") as f:
        f.truncate(limits.MAX_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(SpecError) as e:
        load(spec)
    assert e.value.problems == [f"{spec}: larger than 64 MiB, the limit for a spec file"]


def test_control_characters_are_refused_with_their_place() -> None:
    with pytest.raises(SpecError) as e:
        # With another error in the file too: PyYAML used to fail with a ReaderError.
        load_text("version: 1\nroot: /a\x07b\nnetwork: {icc: maybe}\n\x1b[31m: 1\n", "spec.yaml")
    assert e.value.problems == [
        "spec.yaml:2:9: control character U+0007 is not allowed in a spec",
        "spec.yaml:4:1: control character U+001B is not allowed in a spec",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\rroot: /a\n", "spec.yaml:1:11: control character U+000D is not allowed"),
        ("version: 1\nroot: /a\x85\n", "spec.yaml:2:9: control character U+0085 is not allowed"),
        ("version: 1\nroot: /a\ufffe\n", "spec.yaml:2:9: character U+FFFE is not allowed"),
        ("version: 1\nroot: /a\ud800\n", "spec.yaml:2:9: character U+D800 is not allowed"),
    ],
    ids=["lone CR", "NEL", "noncharacter", "lone surrogate"],
)
def test_other_refused_characters(text: str, message: str) -> None:
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    assert e.value.problems == [f"{message} in a spec"]


def test_many_control_characters_are_counted_not_listed() -> None:
    with pytest.raises(SpecError) as e:
        load_text("version: 1\n" + "#\x01\n" * 25, "spec.yaml")
    assert len(e.value.problems) == 21
    assert e.value.problems[-1] == "spec.yaml: 5 more such characters"


def test_crlf_and_a_byte_order_mark_are_fine() -> None:
    assert load_text("\ufeffversion: 1\r\nroot: /srv/docker\r\n").root.name == "docker"


def test_a_rust_panic_in_yaml_rs_falls_back_to_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyo3 turns a Rust panic into PanicException, a BaseException: it must not escape."""
    import yaml_rs

    class PanicException(BaseException):
        pass

    def panic(text: str, **kwargs: Any) -> Any:
        raise PanicException("called `Option::unwrap()` on a `None` value")

    monkeypatch.setattr(yaml_rs, "loads", panic)
    assert load_text("version: 1\nroot: /srv/docker\n").root.name == "docker"


def test_yaml_rs_runs_on_a_stack_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import yaml_rs

    seen: list[str] = []

    def record(text: str, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return {"version": 1}

    monkeypatch.setattr(yaml_rs, "loads", record)
    load_text("version: 1\n")
    assert seen == ["yaml-rs"]


def test_a_syntax_error_in_a_large_file_is_located_by_yaml_rs() -> None:
    """PyYAML would take seconds to read a large file only to say where it goes wrong."""
    filler = "".join(f"# {'-' * 70}\n" for _ in range(limits.SMALL_TEXT // 70))
    text = "version: 1\n" + filler + "network:\n  icc: [true\n"
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    lines = text.count("\n")
    assert e.value.problems == [f"spec.yaml:{lines}:8: invalid YAML: unclosed bracket '['"]


def test_multi_line_yaml_errors_are_one_line() -> None:
    with pytest.raises(SpecError) as e:
        load_text("version: 1\nnetwork:\n  icc: [true\n", "spec.yaml")
    assert e.value.problems == [
        "spec.yaml:4:1: invalid YAML: while parsing a flow sequence did not find expected ',' "
        "or ']'"
    ]


def test_the_fast_parser_is_not_given_aliases_or_deep_indentation() -> None:
    assert spec_loader.limits.fast_parser_may_read("version: 1\n", b"version: 1\n")
    for text in ("a: &x 1\n", "a: [*x]\n", "x:\n" + " " * 200 + "a: 1\n"):
        assert not limits.fast_parser_may_read(text, text.encode()), text
    # an ampersand inside a value or a comment is no alias: it only costs a slower read
    assert limits.fast_parser_may_read("a: b&c # x*y\n", b"a: b&c # x*y\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"version: 1\nnetwork: {{bridge: {{mtu: {'9' * 5000}}}}}\nx: &a 1\n",
            "spec.yaml:2:25: invalid YAML: a number too long to read",
        ),
        (
            "version: 1\nx: 2001-13-45\ny: &a 1\n",
            "spec.yaml:2:4: invalid YAML: not a valid timestamp: month must be in 1..12",
        ),
        (
            f"version: 1\nnetwork: {{iptables_lock_timeout: {'9' * 400}}}\n",
            "spec.yaml:2:34: network.iptables_lock_timeout: must be a number of seconds above 0 "
            "and at most 3600, got a number too large to use",
        ),
    ],
    ids=["5000-digit int read by PyYAML", "13th month read by PyYAML", "int too large for a float"],
)
def test_values_a_parser_cannot_build_are_located(text: str, message: str) -> None:
    """Found by the fuzzer: each of these was an internal error (ValueError, OverflowError)."""
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    assert e.value.problems == [message]
