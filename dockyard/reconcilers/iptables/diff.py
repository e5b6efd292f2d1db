"""Pure: the changes that bring one table's chains to dockyard's rules, touching no other rule.

In a built-in chain dockyard orders its own rules among themselves and keeps them below every
foreign jump to DOCKER-USER or DOCKER-ISOLATION-* (the user's rules and the daemon's isolation
come first); otherwise it leaves positions as it finds them, so a daemon that puts its rules on
top at each start moves dockyard's down without that being drift. New rules go right after the
rule of dockyard's they follow, or just below the last barrier. In dockyard's own chains
(DOCKYARD) every rule is dockyard's and order carries no meaning (the rules match disjoint
traffic), so a chain of 100,000 rules needs one delete and one append to follow one changed
mapping. The daemon's chains (DOCKER) are only ever created.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import pairwise

from dockyard.change import Action, Change
from dockyard.reconcilers.iptables.rules import (
    DAEMON,
    ENSURED,
    ISOLATION,
    OWN_CHAINS,
    REMOVABLE,
    USER_CHAIN,
    Rule,
    Wanted,
)
from dockyard.reconcilers.iptables.save import owned_tag, untouched

NAME = "iptables"
BULK = 50  # more rules than this to add or remove in one of dockyard's chains: one change


def rule_change(
    action: Action, table: str, chain: str, line: str, position: int | None, reason: str
) -> Change:
    where = {"position": position if position is not None else "end"}
    before, after = (where, None) if action == "delete" else (None, where)
    return Change(NAME, "rule", f"{table} {chain} {line}", action, before, after, reason)


def chain_change(action: Action, table: str, chain: str, reason: str) -> Change:
    attrs: dict[str, object] = {}
    before, after = (attrs, None) if action == "delete" else (None, attrs)
    return Change(NAME, "chain", f"{table} {chain}", action, before, after, reason)


def _why_not(table: str, chain: str, line: str, tag: str, tags: set[str], copied: bool) -> str:
    if not untouched(table, chain, line, tag):
        return "changed by hand"
    if tag in tags:
        return "duplicate" if copied else "out of place"
    return "no longer wanted"


def barrier(line: str) -> bool:
    """A foreign jump to DOCKER-USER or DOCKER-ISOLATION-*: every rule of dockyard's in its
    chain stands below it."""
    if owned_tag(line) is not None:
        return False
    padded = f" {line} "
    return f" -j {USER_CHAIN} " in padded or f" -j {ISOLATION}" in padded


def floor(current: Sequence[str]) -> int:
    """The index below the last barrier (0 when there is none)."""
    return max((i + 1 for i, line in enumerate(current) if barrier(line)), default=0)


def ordered(
    table: str, chain: str, current: Sequence[str], want: Sequence[Rule]
) -> Iterator[Change]:
    """A built-in chain: our rules in order among themselves, once each, all below the last
    barrier; the fewest moves that get there, foreign rules never moved.

    Of our rules below the barriers, the longest run already in the wanted order is kept; every
    other rule of ours is deleted, and the missing ones are inserted right after the rule of
    ours they follow (or just below the barriers).
    """
    texts = [r.text for r in want]
    low = floor(current)
    ours = [i for i in range(low, len(current)) if owned_tag(current[i]) is not None]
    kept = {ours[k] for k in _kept([current[i] for i in ours], texts)}
    # `-D chain rule` removes the first copy of a rule: a rule to delete that also stands among
    # the kept ones would take the good copy with it, so such a rule goes in every copy.
    while True:
        doomed = {line for i, line in enumerate(current) if i not in kept and owned_tag(line)}
        clash = {i for i in kept if current[i] in doomed}
        if not clash:
            break
        kept -= clash
    tags = {r.tag for r in want}
    copies = Counter(current)
    for index in range(len(current) - 1, -1, -1):
        line = current[index]
        tag = owned_tag(line)
        if tag is not None and index not in kept:
            above = index < low
            why = "above " + _barrier_named(current, low) if above else None
            why = why or _why_not(table, chain, line, tag, tags, copies[line] > 1)
            yield rule_change("delete", table, chain, line, index + 1, why)
    # Insert positions, as the chain will be when the deletes above are done.
    chain_now = [line for i, line in enumerate(current) if owned_tag(line) is None or i in kept]
    present = {current[i] for i in kept}
    previous: int | None = None  # index in chain_now of the last rule of ours placed
    for text in texts:
        if text in present:
            previous = chain_now.index(text)
            continue
        at = previous + 1 if previous is not None else floor(chain_now)
        chain_now.insert(at, text)
        previous = at
        yield rule_change("create", table, chain, text, at + 1, "missing")


def _barrier_named(current: Sequence[str], low: int) -> str:
    line = current[low - 1]
    return f"the daemon's or the user's jump ({line})"


def _kept(block: Sequence[str], texts: Sequence[str]) -> set[int]:
    """Indexes in `block` of a longest common subsequence with `texts` (both are short)."""
    n, m = len(block), len(texts)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = (
                best[i + 1][j + 1] + 1
                if block[i] == texts[j]
                else max(best[i + 1][j], best[i][j + 1])
            )
    kept, i, j = set(), 0, 0
    while i < n and j < m:
        if block[i] == texts[j]:
            kept.add(i)
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return kept


def unordered(
    table: str, chain: str, current: Sequence[str], want: Sequence[str]
) -> Iterator[Change]:
    """One of dockyard's own chains: each wanted rule present once, anywhere, and nothing else.

    Past BULK rules to add or remove, one change carries the chain's whole content before and
    after: 100,000 published ports are one line of the plan, not 100,000, and apply rewrites the
    chain in one pass instead of searching it once per rule removed."""
    wanted = set(want)
    if len(current) == len(wanted) and wanted.issuperset(current):
        return  # the no-op run at scale: two set operations in C
    kept = set(current)
    doomed: list[tuple[int, str, str]] = []
    if len(kept) == len(current):  # no copies: set algebra in C, a loop only over what goes
        extra = kept - wanted
        if extra:
            doomed = [(i, current[i], "not in the spec") for i in _indexes(current, extra)]
            kept -= extra
    else:
        kept = set()
        for index, line in enumerate(current):
            if line in wanted and line not in kept:
                kept.add(line)
            else:
                doomed.append((index, line, "duplicate" if line in kept else "not in the spec"))
    missing = [line for line in want if line not in kept]
    if len(doomed) > BULK or len(missing) > BULK:
        yield _rewrite(table, chain, current, missing, doomed)
        return
    for index, line, why in reversed(doomed):
        yield rule_change("delete", table, chain, line, index + 1, why)
    for line in missing:
        yield rule_change("create", table, chain, line, None, "missing")


def _indexes(lines: Sequence[str], among: set[str]) -> list[int]:
    """Where the (unique) lines `among` stand in `lines`, in order: a few are searched for in
    C (one changed mapping among 100,000: 0.1 ms, not 10), many in one pass."""
    if len(among) > 16:
        return [i for i, line in enumerate(lines) if line in among]
    return sorted(map(lines.index, among))


def _rewrite(
    table: str,
    chain: str,
    current: Sequence[str],
    missing: list[str],
    doomed: list[tuple[int, str, str]],
) -> Change:
    gone = {index for index, _, _ in doomed}
    final = [line for index, line in enumerate(current) if index not in gone] + missing
    counts = Counter(why for _, _, why in doomed)
    reason = ", ".join(
        f"{n:,} {what}"
        for n, what in (
            (len(missing), "missing"),
            (counts["not in the spec"], "not in the spec"),
            (counts["duplicate"], "duplicate"),
        )
        if n
    )
    before = {"count": len(current), "lines": list(current)} if current else None
    after = {"count": len(final), "lines": final} if final else None
    action: Action = "update" if before and after else "create" if after else "delete"
    return Change(NAME, "rules", f"{table} {chain}", action, before, after, reason)


def install(
    table: str,
    chains: dict[str, list[str]],
    want: Wanted,
    daemon_live: bool = False,
    only: frozenset[str] | None = None,
) -> list[Change]:
    """Changes that install dockyard's rules in `table`, chains first. A live daemon makes its
    own DOCKER chain (dockerd deletes and recreates it at each start: creating it in that
    moment would be a fight over the daemon's object). With `only`, `chains` holds those
    chains alone (the others are known to be as they were when nothing was to change) and
    the changes are theirs."""

    def here(chain: str) -> bool:
        return only is None or chain in only

    changes = [
        chain_change("create", table, chain, "missing")
        for chain in ENSURED[table]
        if here(chain) and chain not in chains and not (daemon_live and chain == DAEMON)
    ]
    for (t, chain), rules in want.builtin.items():
        if t == table and here(chain):
            changes.extend(ordered(table, chain, chains.get(chain, []), rules))
    for (t, chain), lines in want.own.items():
        if t == table and here(chain):
            changes.extend(unordered(table, chain, chains.get(chain, []), lines))
    for chain, current in chains.items():
        wanted_here = (table, chain) in want.builtin or (table, chain) in want.own
        if not wanted_here and chain != USER_CHAIN:
            changes.extend(ordered(table, chain, current, []))  # only tagged rules go
    return changes


def remove(table: str, chains: dict[str, list[str]]) -> list[Change]:
    """Changes that take every rule and chain of dockyard's out of `table`; foreign rules stay,
    and a chain that a foreign rule jumps to stays too (emptied, when it is dockyard's own)."""
    changes: list[Change] = []
    for chain, current in chains.items():
        if chain in OWN_CHAINS[table]:
            changes.extend(unordered(table, chain, current, []))
        else:
            changes.extend(ordered(table, chain, current, []))
    foreign_lines = [
        line
        for chain, lines in chains.items()
        if chain not in OWN_CHAINS[table]
        for line in lines
        if owned_tag(line) is None
    ]
    for chain in REMOVABLE[table]:
        if chain not in chains:
            continue
        if chain == USER_CHAIN and chains[chain]:
            continue  # the user's rules are in it
        if any(_jumps_to(line, chain) for line in foreign_lines):
            continue
        changes.append(chain_change("delete", table, chain, "dockyard's chain, no longer wanted"))
    return changes


def _jumps_to(line: str, chain: str) -> bool:
    words = line.split()
    return any(a in ("-j", "-g") and b == chain for a, b in pairwise(words))


Tables = dict[str, dict[str, list[str]]]


def committed(tables: Tables, changes: Sequence[Change]) -> Tables | None:
    """Pure: the tables as they stand once `changes` are committed, when that follows from the
    changes alone: each of them a rule change in one of dockyard's own chains, which only
    dockyard writes, with rules it renders in the form `iptables-save` prints (rules.py). None
    when any change touches a chain another program may write (a built-in chain, where the
    daemon inserts its jumps) or makes or removes a chain.

    As the commit does it: a bulk change leaves exactly its lines after; `-D chain rule`
    removes the first copy of the rule; a rule is appended, or inserted at its position."""
    out = {table: dict(chains) for table, chains in tables.items()}
    copied: set[tuple[str, str]] = set()
    for change in changes:
        table, chain, *rest = change.name.split(" ", 2)
        if change.kind not in ("rule", "rules") or chain not in OWN_CHAINS.get(table, ()):
            return None
        if chain not in out.get(table, {}):
            return None
        if change.kind == "rules":
            out[table][chain] = list((change.after or {}).get("lines", []))
            copied.add((table, chain))
            continue
        if (table, chain) not in copied:
            out[table][chain] = list(out[table][chain])
            copied.add((table, chain))
        lines = out[table][chain]
        if change.action == "delete":
            try:
                lines.remove(rest[0])
            except ValueError:
                return None  # the commit would have failed
        elif change.action == "create":
            position = (change.after or {}).get("position", "end")
            lines.insert(len(lines) if position == "end" else position - 1, rest[0])
        else:
            return None
    return out


def entries_added(changes: Sequence[Change]) -> dict[str, int]:
    """Pure: per table, the rules these changes add less those they remove."""
    added: dict[str, int] = {}
    for change in changes:
        table = change.name.split(" ", 1)[0]
        if change.kind == "rules":
            count = len((change.after or {}).get("lines", []))
            count -= len((change.before or {}).get("lines", []))
        elif change.kind == "rule":
            count = 1 if change.action == "create" else -1 if change.action == "delete" else 0
        else:
            count = 0
        added[table] = added.get(table, 0) + count
    return added
