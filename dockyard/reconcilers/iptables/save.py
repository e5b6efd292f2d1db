"""Reading `iptables-save` output: chains and rule lines per table, nothing decoded.

Outside dockyard's own chains a rule is recognised as dockyard's by its comment alone: a
string search, not a parse of every match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

from dockyard.change import Change
from dockyard.reconcilers.iptables.rules import TAG, block, tag_of

_MARK = f'-m comment --comment "{TAG}'
_TAG_LENGTH = len(tag_of(""))
_HEX = frozenset("0123456789abcdef")


class Lines(Sequence[str]):
    """One chain's rule lines (each without `-A CHAIN `), kept as the block of text
    iptables-save printed and split only when a line is asked for: a chain of 100,000 rules
    that holds what dockyard wants compares as one string (`block`), in C, and one that
    differs in a few lines is compared around them (diff.py), never cut into 100,000 strings.
    """

    __slots__ = ("_lines", "block", "leaves", "prefix")

    def __init__(self, block: str, prefix: str) -> None:
        self.block = block  # `-A CHAIN rule` lines joined by newlines; "" for none
        self.prefix = prefix  # `-A CHAIN `
        self._lines: list[str] | None = None
        # The changes a plan made for this chain and the block they were shown to leave
        # (diff._around), so that the verify pass is told it without editing 10 MB of text.
        self.leaves: tuple[tuple[Change, ...], str] | None = None

    @classmethod
    def of(cls, chain: str, lines: Sequence[str]) -> Lines:
        made = cls(block(chain, lines), f"-A {chain} ")
        made._lines = list(lines)
        return made

    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self._split()
        return self._lines

    def _split(self) -> list[str]:
        return self.block[len(self.prefix) :].split("\n" + self.prefix) if self.block else []

    def __len__(self) -> int:
        if self._lines is not None:
            return len(self._lines)
        return self.block.count("\n") + 1 if self.block else 0

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self.lines()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines())

    def __contains__(self, line: object) -> bool:
        return line in self.lines()

    def __eq__(self, other: object) -> bool:
        """As the lists of lines compare, without keeping either split: a watch compares each
        observation with the last one, and keeps it (a split chain of 100,000 rules would
        hold 40 MB more)."""
        if isinstance(other, Lines) and other.prefix == self.prefix:
            return other.block == self.block
        if not isinstance(other, Sequence) or isinstance(other, str):
            return False
        theirs = other._split() if isinstance(other, Lines) else other
        if len(theirs) != len(self):
            return False
        return (self.prefix + ("\n" + self.prefix).join(theirs) if theirs else "") == self.block

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which have none

    def __repr__(self) -> str:
        return repr(self._lines if self._lines is not None else self._split())

    def __deepcopy__(self, memo: dict[int, object]) -> list[str]:
        # `reconcile show` renders observations with dataclasses.asdict, which deep-copies.
        return list(self._lines if self._lines is not None else self._split())


@dataclass
class Table:
    chains: list[str] = field(default_factory=list)
    rules: dict[str, Sequence[str]] = field(default_factory=dict)  # chain -> lines, no `-A C `


_INCOMPATIBLE = re.compile(
    r"^# Table `([^'\n]*)' (?:is incompatible|contains incompatible base-chains)", re.MULTILINE
)


def incompatible(text: str) -> list[str]:
    """The tables iptables-nft-save could not show whole: rules written with `nft` that
    iptables cannot express (it prints a comment in the place of the table, as if it were
    empty), or base chains it cannot (it leaves them out). Searched for in C first: the
    pattern over 300,000 rules' text takes 0.1 s."""
    return _INCOMPATIBLE.findall(text) if "incompatible" in text else []


def parse(text: str) -> dict[str, Table]:
    """Tables, their chains in order, and each chain's rule lines without `-A CHAIN `."""
    if _open_quote(text):
        return _by_lines(text)
    tables: dict[str, Table] = {}
    for name, _, name_end, end in _sections(text):
        lo, hi = name_end + 1, min(end + 1, len(text))
        tables[name] = _blocks(text, lo, hi) or _lines(text[lo:hi])
    return tables


def _sections(text: str) -> Iterator[tuple[str, int, int, int]]:
    """Each table of a save: its name, where its `*name` line starts and ends, and where its
    `COMMIT` line's newline before it is (the text's end when it has none)."""
    at = 0
    while (star := _line_start(text, "*", at)) >= 0:
        name_end = text.find("\n", star)
        if name_end < 0:
            return
        end = text.find("\nCOMMIT\n", name_end)
        end = len(text) if end < 0 else end
        yield text[star + 1 : name_end].strip(), star, name_end, end
        at = end + 1


def with_tables(text: str, tables: Mapping[str, Mapping[str, Sequence[str]]]) -> str | None:
    """`text` (iptables-save output) with the tables named in `tables` as it holds them, the
    others as they were, in the layout `parse` reads (chain counters and comments left out):
    what a read would give after a commit that changed only those. None for a text where a
    rule goes on over lines (its sections are not cut by searching)."""
    if _open_quote(text):
        return None
    out: list[str] = []
    for name, star, _, end in _sections(text):
        if name not in tables:
            section = text[star : min(end + len("\nCOMMIT\n"), len(text))]
            out.append(section if section.endswith("\n") else section + "\n")
    for name, chains in tables.items():
        out.append(f"*{name}\n")
        out.extend(f":{chain} - [0:0]\n" for chain in chains)
        for chain, lines in chains.items():
            prefix = f"-A {chain} "
            held = lines.block if isinstance(lines, Lines) and lines.prefix == prefix else None
            body = held if held is not None else block(chain, list(lines))
            if body:
                out.append(body + "\n")
        out.append("COMMIT\n")
    return "".join(out)


def _line_start(text: str, mark: str, at: int) -> int:
    if text.startswith(mark, at):
        return at
    found = text.find("\n" + mark, at)
    return found + 1 if found >= 0 else -1


def _blocks(text: str, lo: int, hi: int) -> Table | None:
    """The fast way, for iptables-save's own layout, of the table in text[lo:hi] (`lo` just
    after a newline): each chain's rules in one block, the blocks in the order of the chain
    headers. Block after block, the chain is read from its first line and the block's end
    found in a few steps (`_run_end`), then checked with string searches in C, and kept as
    one string (Lines); chains with no rules cost nothing. None when the layout is any
    other: the caller reads line by line."""
    first = text.find("\n-A ", lo - 1, hi)
    first = hi if first < 0 else first + 1
    table = Table()
    for line in text[lo:first].split("\n"):
        if line[:1] == ":":
            name = line[1:].split(" ", 1)[0]
            table.chains.append(name)
            table.rules[name] = []
        elif line.strip() and line[:1] != "#":
            return None
    order = {name: i for i, name in enumerate(table.chains)}
    at, seen = first, -1
    while at < hi:
        line_end = text.find("\n", at, hi)
        space = text.find(" ", at + 3, hi if line_end < 0 else line_end)
        if not text.startswith("-A ", at) or space < 0:
            return None
        name = text[at + 3 : space]
        if order.get(name, -1) <= seen:
            return None  # a chain without a header, or one's rules in two places
        seen = order[name]
        prefix = f"-A {name} "
        end = _run_end(text, at, hi, prefix)
        last = end - 1 if text[end - 1] == "\n" else end  # the block without its last newline
        if text.count("\n", at, last) != text.count("\n" + prefix, at, last):
            return None  # another chain's rule among this chain's
        table.rules[name] = Lines(text[at:last], prefix)
        at = end
    return table


def _run_end(text: str, start: int, hi: int, prefix: str) -> int:
    """Where the lines from `start` (the first begins with `prefix`) stop beginning with it:
    the start of the first line that does not, or `hi`. Galloping then halving over offsets,
    one line looked at each step: as many steps as the logarithm of the run's length. In a
    layout where the lines of `prefix` are not together, some end is found: the caller's
    checks refuse it."""

    def after(offset: int) -> int:  # the start of the line after the one holding `offset`
        newline = text.find("\n", offset, hi)
        return hi if newline < 0 else newline + 1

    good, step = start, 1 << 12
    while True:
        probe = after(min(good + step, hi - 1))
        if probe >= hi or not text.startswith(prefix, probe):
            bad = probe
            break
        good, step = probe, step * 2
    while True:
        following = after(good)
        if following >= bad:
            return bad
        middle = after((good + bad) // 2)
        middle = following if middle >= bad else middle
        if text.startswith(prefix, middle):
            good = middle
        else:
            bad = middle


# What iptables prints just before a string it quotes: a comment, a log prefix, a helper's
# or an nfacct object's name (xtables_save_string, which puts a space of its own first), a
# string match's pattern. Each is longer than an interface name may be (15 bytes), so no
# name printed bare before it (iptables accepts `"`, spaces and newlines in one, with a
# warning) can pass for it: a `"` after anything else is not a string's start. Every option
# of iptables 1.8.9 whose string may hold a `"` is here (but ULOG's and LED's, whose kernel
# modules this kernel lacks): inside a string, text that reads as one of these is skipped
# with the string.
_OPENERS = (
    " -m comment --comment ",
    " -j LOG --log-prefix ",
    " -j NFLOG --nflog-prefix ",
    " -m helper --helper ",
    " -m helper ! --helper ",
    " -m string --string ",
    " -m string ! --string ",
    " -m string --hex-string ",
    " -m string ! --hex-string ",
    " -m nfacct --nfacct-name  ",
    " -m nfacct ! --nfacct-name  ",
)


def _opener(text: str, at: int) -> int:
    """The next `"` from `at` that starts a string iptables quoted, or -1: each `"` found in
    C, and a save holds few."""
    quote = text.find('"', at)
    while quote >= 0 and not text.endswith(_OPENERS, 0, quote):
        quote = text.find('"', quote + 1)
    return quote


def _string_end(text: str, at: int) -> int:
    """Where the string iptables quoted from `at` (its `"`) ends: the index of its closing
    `"`, or -1. Inside, `"`, `\\` and `'` are escaped with a backslash (xtables_save_string)."""
    close = text.find('"', at + 1)
    while close >= 0:
        escapes = close - 1
        while text[escapes] == "\\":
            escapes -= 1
        if (close - 1 - escapes) % 2 == 0:
            return close
        close = text.find('"', close + 1)
    return -1


def _open_quote(text: str) -> bool:
    """Whether a string iptables quoted in `text` is not closed on its line: a comment
    holding a newline, which the tools print as it is; its rule goes on over the next line,
    whatever that looks like."""
    at = _opener(text, 0)
    while at >= 0:
        end = _string_end(text, at)
        if end < 0 or text.find("\n", at, end) >= 0:
            return True
        at = _opener(text, end + 1)
    return False


def _logical(text: str) -> Iterator[str]:
    """The lines of iptables-save or `-S` output as `split("\\n")` gives them (iptables-restore
    reads lines at "\\n" only, not at \\r, \\x85 or U+2028), but a rule whose quoted string
    holds a newline whole, its lines joined by that newline. Each string is searched once."""
    at, size = 0, len(text)
    quote = _opener(text, 0)
    while at <= size:
        end = text.find("\n", at)
        end = size if end < 0 else end
        while 0 <= quote < end:
            close = _string_end(text, quote)
            if close < 0:
                end, quote = size, -1
                break
            if close > end:
                end = text.find("\n", close)
                end = size if end < 0 else end
            quote = _opener(text, close + 1)
        yield text[at:end]
        at = end + 1


def _by_lines(text: str) -> dict[str, Table]:
    """`parse` for a text where a rule goes on over lines: each line read, none searched for."""
    tables: dict[str, Table] = {}
    name: str | None = None
    body: list[str] = []
    for line in _logical(text):
        if name is None:
            if line[:1] == "*":
                name, body = line[1:].strip(), []
        elif line == "COMMIT":
            tables[name], name = _table_of(body), None
        else:
            body.append(line)
    if name is not None:
        tables[name] = _table_of(body)
    return tables


def _lines(body: str) -> Table:
    return _table_of(_logical(body))


def _table_of(text_lines: Iterable[str]) -> Table:
    table = Table()
    found: dict[str, list[str]] = {}
    # Rules of one chain come together: keep the chain's list at hand instead of a lookup each.
    chain: str = ""
    lines: list[str] | None = None
    for line in text_lines:
        if line[:3] == "-A ":
            name, _, rule = line[3:].partition(" ")
            if name != chain or lines is None:
                chain, lines = name, found.setdefault(name, [])
            lines.append(rule)
        elif line[:1] == ":":
            name = line[1:].split(" ", 1)[0]
            table.chains.append(name)
            found.setdefault(name, [])
    table.rules.update(found)
    return table


def listed(text: str, chain: str) -> list[str]:
    """The rule lines of `chain` in `iptables -S CHAIN` output, without `-A CHAIN `."""
    prefix = f"-A {chain} "
    lines = _logical(text) if _open_quote(text) else text.split("\n")
    return [line[len(prefix) :] for line in lines if line.startswith(prefix)]


def owned_tag(rule: str) -> str | None:
    """The `dockyard:<hash>` comment of a rule, or None for a rule that is not dockyard's.
    Only a tag as dockyard writes it (16 hex digits) counts: a comment of the user's that
    happens to start with `dockyard:` is not one, nor a rule over two lines (dockyard writes
    none: its text could not be written back to name it)."""
    if "\n" in rule:
        return None
    at = rule.find(_MARK)
    while at >= 0:
        start = at + len(_MARK) - len(TAG)
        end = start + _TAG_LENGTH
        if rule[end : end + 1] == '"' and _HEX.issuperset(rule[start + len(TAG) : end]):
            return rule[start:end]
        at = rule.find(_MARK, at + 1)
    return None


def holds_tags(saved: str) -> bool:
    """Whether a save holds a rule of dockyard's (its tag, not any `dockyard:` comment): a
    string search in C, each comment found checked as `owned_tag` checks it."""
    at = saved.find(_MARK)
    while at >= 0:
        if owned_tag(saved[at : at + len(_MARK) + _TAG_LENGTH]) is not None:
            return True
        at = saved.find(_MARK, at + 1)
    return False


def untouched(table: str, chain: str, rule: str, tag: str) -> bool:
    """Whether a rule of ours still matches the hash it was written with (not edited by hand)."""
    comment = f'-m comment --comment "{tag}"'
    short = (
        rule.replace(f" {comment} ", " ", 1)
        if f" {comment} " in rule
        else rule.replace(f"{comment} ", "", 1)
    )
    return tag_of(f"{table} {chain} {short}") == tag
