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
from collections.abc import Iterator, Mapping, Sequence, Set
from itertools import pairwise

from dockyard.change import Action, Change
from dockyard.reconcilers.iptables.rules import (
    DAEMON,
    ENSURED,
    ISOLATION,
    OWN_CHAINS,
    REMOVABLE,
    USER_CHAIN,
    Own,
    Rule,
    Wanted,
)
from dockyard.reconcilers.iptables.save import Lines, owned_tag, untouched

NAME = "iptables"
ENTRIES_PER_CHAIN = 2  # legacy xtables: a user chain's head, and the return at its end
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
    table: str,
    chain: str,
    current: Sequence[str],
    want: Sequence[str],
    own: Own | None = None,
    deletes_read_chain: bool = False,
) -> Iterator[Change]:
    """One of dockyard's own chains: each wanted rule present once, anywhere, and nothing else.

    Past BULK rules to add or remove, one change carries the chain's whole content before and
    after: 100,000 published ports are one line of the plan, not 100,000, and apply rewrites the
    chain in one pass instead of searching it once per rule removed. With `own` (the wanted
    lines as a block and a set, rules.Own), a chain read as a block (save.Lines) that differs
    in one short stretch is compared there alone (`_around`).

    `deletes_read_chain`: naming a rule to delete it (or a place to insert one) makes the tool
    read the whole chain first. iptables-nft does: at 100,000 rules the kernel takes 13 s to
    list the chain, and 2.6 s to take it flushed and written again. Past BULK rules such a
    chain is then written again whenever a rule of it must go."""
    rewrite = deletes_read_chain and len(current) > BULK
    if isinstance(current, Lines) and own is not None and current.block == own.block:
        return  # the wanted block, as iptables-save prints it: one comparison in C
    if own is not None and own.members is not None and isinstance(current, Lines) and not rewrite:
        near = _around(table, chain, current, own)
        if near is not None:
            yield from near
            return
    wanted = own.members if own is not None and own.members is not None else set(want)
    kept = set(current)
    if len(kept) == len(current) and kept == wanted:
        return  # each wanted rule once, nothing else: set operations in C
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
    absent = wanted - kept
    if len(absent) <= 16:
        missing = _in(want, absent)
    elif own is not None and own.members is not None:
        missing = [line for line in want if line in absent]
    else:
        missing = list(dict.fromkeys(line for line in want if line in absent))
    if (
        len(doomed) > BULK
        or len(missing) > BULK
        or (rewrite and doomed)
        # A rule over two lines (a comment holding a newline) cannot be named to `-D`: the
        # chain, dockyard's alone, is flushed and written again.
        or any("\n" in line for _, line, _ in doomed)
    ):
        yield _rewrite(table, chain, current, missing, doomed, want)
        return
    for index, line, why in reversed(doomed):
        yield rule_change("delete", table, chain, line, index + 1, why)
    for line in missing:
        yield rule_change("create", table, chain, line, None, "missing")


def _in(want: Sequence[str], few: Set[str]) -> list[str]:
    """The few lines, in the order `want` has them (each searched for in C)."""
    return sorted(few, key=want.index)


_CHUNK = 1 << 16


def _shared(a: str, b: str, limit: int, backwards: bool = False, chunk: int = _CHUNK) -> int:
    """How many characters `a` and `b` share from their start (or end), at most `limit`:
    compared a chunk at a time, then by halves, each comparison in C."""

    def same(i: int, j: int) -> bool:  # a and b agree on [i, j), counted from the start or end
        if backwards:
            return a[len(a) - j : len(a) - i] == b[len(b) - j : len(b) - i]
        return a[i:j] == b[i:j]

    at = 0
    while at < limit:
        step = min(chunk, limit - at)
        if not same(at, at + step):
            low, high = at, at + step  # they agree up to low, not up to high
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if same(at, middle) else (low, middle)
            return low
        at += step
    return limit


def _around(table: str, chain: str, current: Lines, own: Own) -> list[Change] | None:
    """Where the chain's block and the wanted one differ in one stretch of at most BULK lines
    each (one changed mapping among 100,000 published ports): the changes found from that
    stretch alone, the chain never split, new rules inserted where the wanted order has them
    so that the chain keeps that order and the next run compares one string again. None when
    they differ in more than that: the caller compares the chain as a set."""
    block, wanted = current.block, own.block
    if block == wanted:
        return []
    prefix = current.prefix
    if not block or not wanted or prefix != f"-A {chain} " or own.members is None:
        return None
    a, b = block, wanted
    start = a.rfind("\n", 0, _shared(a, b, min(len(a), len(b)))) + 1  # same lines before
    tail = _shared(a, b, min(len(a), len(b)) - start, backwards=True)
    end_a, end_b = len(a) - tail, len(b) - tail  # the same lines after, once at a line start
    if not (_starts_line(a, end_a, start) and _starts_line(b, end_b, start)):
        newline = a.find("\n", end_a)  # in the shared end: a newline in both
        end_a, end_b = (
            (len(a) + 1, len(b) + 1)
            if newline < 0
            else (newline + 1, newline + 1 + len(b) - len(a))
        )
    if max(_lines_in(a, start, end_a), _lines_in(b, start, end_b)) > BULK:
        return None
    old = a[start : end_a - 1].split("\n") if end_a > start else []
    new = b[start : end_b - 1].split("\n") if end_b > start else []
    if not all(line.startswith(prefix) for line in (*old, *new)):
        return None
    size, first = len(prefix), a.count("\n", 0, start)
    now = [line[size:] for line in new]
    wanted_here = set(now)
    kept: list[str] = []
    doomed: list[tuple[int, str]] = []
    for index, line in enumerate(line[size:] for line in old):
        if line in wanted_here and line not in kept:
            kept.append(line)
        else:
            doomed.append((first + index, line))
    changes = [
        rule_change(
            "delete",
            table,
            chain,
            line,
            index + 1,
            "duplicate" if line in own.members else "not in the spec",
        )
        for index, line in reversed(doomed)
    ]
    following = iter(now)
    in_order = all(line in following for line in kept)  # kept is a subsequence of now
    for index, line in enumerate(now):
        if line not in kept:
            at = first + index + 1 if in_order else None
            changes.append(rule_change("create", table, chain, line, at, "missing"))
    if in_order and not any(line in own.members for _, line in doomed):
        # No rule deleted is wanted, so none has a copy in the same lines before the stretch,
        # which `-D` would take instead: the commit leaves exactly the wanted block.
        current.leaves = (tuple(changes), own.block)
    return changes


def _lines_in(text: str, start: int, end: int) -> int:
    """How many lines text[start:end - 1] holds (`end` just past a newline, or the end + 1)."""
    return text.count("\n", start, end - 1) + 1 if end > start else 0


def _starts_line(text: str, at: int, start: int) -> bool:
    return at == start or text[at - 1] == "\n"


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
    want: Sequence[str],
) -> Change:
    """The chain's content before and after. With nothing to remove, the rules there stay
    where they are and the missing ones follow (appends); else the chain is written whole
    (`_rewrite_commands`), in the wanted order, which the next run compares as one string."""
    final = list(dict.fromkeys(want)) if doomed else [*current, *missing]
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
    chains: Mapping[str, Sequence[str]],
    want: Wanted,
    daemon_live: bool = False,
    only: frozenset[str] | None = None,
    deletes_read_chain: bool = False,
) -> list[Change]:
    """Changes that install dockyard's rules in `table`, chains first. A live daemon makes its
    own DOCKER chain (dockerd deletes and recreates it at each start: creating it in that
    moment would be a fight over the daemon's object). With `only`, `chains` holds those
    chains alone (the others are known to be as they were when nothing was to change) and
    the changes are theirs. `deletes_read_chain`: see `unordered`."""

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
            own = want.indexed.get((t, chain))
            current = chains.get(chain, [])
            changes.extend(unordered(table, chain, current, lines, own, deletes_read_chain))
    for chain, current in chains.items():
        wanted_here = (table, chain) in want.builtin or (table, chain) in want.own
        if not wanted_here and chain != USER_CHAIN:
            changes.extend(ordered(table, chain, current, []))  # only tagged rules go
    return changes


def remove(table: str, chains: Mapping[str, Sequence[str]]) -> list[Change]:
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


Tables = dict[str, dict[str, Sequence[str]]]


def committed(tables: Tables, changes: Sequence[Change]) -> Tables | None:
    """Pure: the tables as they stand once `changes` are committed, when that follows from the
    changes alone: rules dockyard renders in the form `iptables-save` prints (rules.py), in
    any chain, and chains made empty. The caller proves that nothing else wrote between the
    read and the commit, nor during it (`moved_by`). None when a change removes a chain, makes
    one that is there, or names one that is not: the tables are read again.

    As the commit does it: a bulk change leaves exactly its lines after; `-D chain rule`
    removes the first copy of the rule; a rule is appended, or inserted at its position. A
    chain read as a block (save.Lines) stays one: the block its plan proved the changes
    leave (`_around`), else the block edited as text."""
    out = {table: dict(chains) for table, chains in tables.items()}
    each: dict[tuple[str, str], list[Change]] = {}
    for change in changes:
        table, chain = change.name.split(" ", 2)[:2]
        here = out.setdefault(table, {})
        if change.kind == "chain":
            if change.action != "create" or chain in here:
                return None
            here[chain] = Lines.of(chain, [])
        elif change.kind not in ("rule", "rules") or chain not in here:
            return None
        else:
            each.setdefault((table, chain), []).append(change)
    for (table, chain), theirs in each.items():
        after = _chain_after(chain, out[table][chain], theirs)
        if after is None:
            return None
        out[table][chain] = after
    return out


def _chain_after(chain: str, current: Sequence[str], changes: list[Change]) -> Sequence[str] | None:
    if isinstance(current, Lines) and current.leaves is not None:
        planned, block = current.leaves
        if tuple(changes) == planned:
            return Lines(block, current.prefix)
    text = current.block if isinstance(current, Lines) else None
    lines = None if text is not None else list(current)
    # A rule over lines (a comment holding a newline) is only ever read into a list (save.py):
    # a block would split it.
    over_lines = lines is not None and any("\n" in line for line in lines)
    for change in changes:
        line = change.name.split(" ", 2)[2] if change.kind == "rule" else ""
        if change.kind == "rules":
            text, lines = None, list((change.after or {}).get("lines", []))
        elif text is not None:
            text = _edited(text, f"-A {chain} ", change, line)
            if text is None:
                return None
        elif lines is not None and change.action == "delete":
            if line not in lines:
                return None  # the commit would have failed
            lines.remove(line)
        elif lines is not None and change.action == "create":
            position = (change.after or {}).get("position", "end")
            if position == "end":
                lines.append(line)
            elif isinstance(position, int) and 0 < position <= len(lines) + 1:
                lines.insert(position - 1, line)
            else:
                return None  # the commit would have failed
        else:
            return None
    if text is not None:
        return Lines(text, f"-A {chain} ")
    return (lines or []) if over_lines else Lines.of(chain, lines or [])


def _edited(block: str, prefix: str, change: Change, line: str) -> str | None:
    """One rule change made to a chain held as its block of text; None when the commit would
    have failed."""
    entry = prefix + line
    if change.action == "delete":  # the first copy
        if block.startswith(entry) and block[len(entry) : len(entry) + 1] in ("", "\n"):
            return block[len(entry) + 1 :]
        at = block.find(f"\n{entry}\n")
        if at >= 0:
            return block[:at] + block[at + len(entry) + 1 :]
        return block[: -len(entry) - 1] if block.endswith("\n" + entry) else None
    if change.action != "create":
        return None
    position = (change.after or {}).get("position", "end")
    if position == "end":
        where: int | None = len(block)
    elif isinstance(position, int) and position > 0:
        where = _after_newlines(block, position - 1)
        if where is None and position == (block.count("\n") + 1 if block else 0) + 1:
            where = len(block)  # the last place: an append
    else:
        return None
    if where is None:
        return None
    if where == len(block):
        return f"{block}\n{entry}" if block else entry
    return f"{block[:where]}{entry}\n{block[where:]}"


def _after_newlines(text: str, count: int, chunk: int = _CHUNK) -> int | None:
    """Just past the `count`-th newline of `text` (None when it has fewer): counted in C a
    chunk at a time, then found one by one in the last chunk."""
    at = 0
    while True:
        end = min(at + chunk, len(text))
        here = text.count("\n", at, end)
        if here >= count:
            for _ in range(count):
                at = text.find("\n", at) + 1
            return at
        if end == len(text):
            return None
        count, at = count - here, end


def entries_added(changes: Sequence[Change]) -> dict[str, int]:
    """Pure: per table, the entries of a legacy xtables table these changes add less those
    they remove: one per rule, two per chain (its head and the return at its end)."""
    added: dict[str, int] = {}
    for change in changes:
        table = change.name.split(" ", 1)[0]
        if change.kind == "rules":
            count = len((change.after or {}).get("lines", []))
            count -= len((change.before or {}).get("lines", []))
        elif change.kind in ("rule", "chain"):
            each = 1 if change.kind == "rule" else ENTRIES_PER_CHAIN
            count = each if change.action == "create" else -each if change.action == "delete" else 0
        else:
            count = 0
        added[table] = added.get(table, 0) + count
    return added
