"""Reading `iptables-save` output: chains and rule lines per table, nothing decoded.

Outside dockyard's own chains a rule is recognised as dockyard's by its comment alone: a
string search, not a parse of every match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.reconcilers.iptables.rules import TAG, tag_of

_MARK = f'-m comment --comment "{TAG}'
_TAG_LENGTH = len(tag_of(""))
_HEX = frozenset("0123456789abcdef")


@dataclass
class Table:
    chains: list[str] = field(default_factory=list)
    rules: dict[str, list[str]] = field(default_factory=dict)  # chain -> lines after `-A CHAIN `


def parse(text: str) -> dict[str, Table]:
    """Tables, their chains in order, and each chain's rule lines without `-A CHAIN `."""
    tables: dict[str, Table] = {}
    at = 0
    while (star := _line_start(text, "*", at)) >= 0:
        name_end = text.find("\n", star)
        if name_end < 0:
            break
        end = text.find("\nCOMMIT\n", name_end)
        end = len(text) if end < 0 else end
        body = text[name_end + 1 : end + 1]
        tables[text[star + 1 : name_end].strip()] = _blocks(body) or _lines(body)
        at = end + 1
    return tables


def _line_start(text: str, mark: str, at: int) -> int:
    if text.startswith(mark, at):
        return at
    found = text.find("\n" + mark, at)
    return found + 1 if found >= 0 else -1


def _blocks(body: str) -> Table | None:
    """The fast way, for iptables-save's own layout: each chain's rules in one block, in the
    order of the chain headers. Each block is found and checked with string searches in C and
    split at once. None when the layout is any other: the caller reads line by line."""
    first = _line_start(body, "-A ", 0)
    head, rules = (body, "") if first < 0 else (body[:first], body[first:])
    table = Table()
    for line in head.splitlines():
        if line[:1] == ":":
            name = line[1:].split(" ", 1)[0]
            table.chains.append(name)
            table.rules[name] = []
        elif line.strip() and line[:1] != "#":
            return None
    at = 0
    for name in table.chains:
        prefix = f"-A {name} "
        if not rules.startswith(prefix, at):
            continue
        last = rules.rfind("\n" + prefix)
        last = at if last < at else last + 1
        end = rules.find("\n", last)
        end = len(rules) if end < 0 else end
        found = rules[at + len(prefix) : end].split("\n" + prefix)
        if rules.count("\n", at, end) != len(found) - 1:
            return None  # another chain's rule among this chain's
        table.rules[name] = found
        at = end + 1
    return table if not rules[at:].strip() else None


def _lines(body: str) -> Table:
    table = Table()
    # Rules of one chain come together: keep the chain's list at hand instead of a lookup each.
    chain: str = ""
    lines: list[str] | None = None
    for line in body.splitlines():
        if line[:3] == "-A ":
            name, _, rule = line[3:].partition(" ")
            if name != chain or lines is None:
                chain, lines = name, table.rules.setdefault(name, [])
            lines.append(rule)
        elif line[:1] == ":":
            name = line[1:].split(" ", 1)[0]
            table.chains.append(name)
            table.rules.setdefault(name, [])
    return table


def listed(text: str, chain: str) -> list[str]:
    """The rule lines of `chain` in `iptables -S CHAIN` output, without `-A CHAIN `."""
    prefix = f"-A {chain} "
    return [line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix)]


def owned_tag(rule: str) -> str | None:
    """The `dockyard:<hash>` comment of a rule, or None for a rule that is not dockyard's.
    Only a tag as dockyard writes it (16 hex digits) counts: a comment of the user's that
    happens to start with `dockyard:` is not one."""
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
