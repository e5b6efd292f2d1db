"""Reading `iptables-save` output: chains and rule lines per table, nothing decoded.

A rule is recognised as dockyard's by its comment alone, so reading 100,000 rules costs a
string search per line, not a parse of every match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.reconcilers.iptables.rules import TAG, tag_of

_MARK = f'-m comment --comment "{TAG}'


@dataclass
class Table:
    chains: list[str] = field(default_factory=list)
    rules: dict[str, list[str]] = field(default_factory=dict)  # chain -> lines after `-A CHAIN `


def parse(text: str) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    table = None
    # Rules of one chain come together: keep the chain's list at hand instead of a lookup each.
    chain: str = ""
    lines: list[str] | None = None
    for line in text.splitlines():
        if line[:3] == "-A ":
            name, _, rule = line[3:].partition(" ")
            if name != chain or lines is None:
                if table is None:
                    continue
                chain, lines = name, table.rules.setdefault(name, [])
            lines.append(rule)
        elif line[:1] == ":":
            if table is not None:
                name = line[1:].split(" ", 1)[0]
                table.chains.append(name)
                table.rules.setdefault(name, [])
        elif line[:1] == "*":
            table = tables.setdefault(line[1:].strip(), Table())
            chain, lines = "", None
        elif line == "COMMIT":
            table, chain, lines = None, "", None
    return tables


def owned_tag(rule: str) -> str | None:
    """The `dockyard:<hash>` comment of a rule, or None for a rule that is not dockyard's."""
    at = rule.find(_MARK)
    if at < 0:
        return None
    start = at + len(_MARK) - len(TAG)
    end = rule.find('"', start)
    return rule[start:end] if end > 0 else None


def untouched(table: str, chain: str, rule: str, tag: str) -> bool:
    """Whether a rule of ours still matches the hash it was written with (not edited by hand)."""
    comment = f'-m comment --comment "{tag}"'
    short = (
        rule.replace(f" {comment} ", " ", 1)
        if f" {comment} " in rule
        else rule.replace(f"{comment} ", "", 1)
    )
    return tag_of(f"{table} {chain} {short}") == tag
