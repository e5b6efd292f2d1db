"""dockyard's own chains read as blocks of text (save.Lines) and compared where they differ
(diff._around), against the chain as a list of lines compared as a set: the same changes,
the same chain after the commit, and the wanted order kept."""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dockyard.change import Change
from dockyard.reconcilers.iptables import IptablesObserved, _commands, diff, rules, save
from dockyard.reconcilers.iptables.save import Lines

POOL = [f"-p tcp -m tcp --dport {n} -j DNAT --to-destination 172.17.0.2:{n}" for n in range(150)]
FOREIGN = ["-p udp -j ACCEPT", "-s 10.0.0.1/32 -j DROP"]


def _own(want: list[str]) -> rules.Own:
    return rules.index_own({("nat", "DOCKYARD"): want})[("nat", "DOCKYARD")]


def _committed(lines: list[str], changes: list[Change]) -> list[str]:
    """What the kernel does with the commit's commands: `-D chain rule` removes the first
    copy, `-I chain N` puts the rule N-th, `-A` appends, a bulk change leaves its lines."""
    out = list(lines)
    for change in changes:
        if change.kind == "rules":
            out = list((change.after or {}).get("lines", []))
            continue
        line = change.name.split(" ", 2)[2]
        if change.action == "delete":
            out.remove(line)
        else:
            position = (change.after or {})["position"]
            out.insert(len(out) if position == "end" else position - 1, line)
    return out


def _tables(chain: Any) -> diff.Tables:
    return {"nat": {"PREROUTING": [], "DOCKYARD": chain}, "filter": {}}


def _plain(changes: list[Change]) -> list[tuple[str, str, str]]:
    return sorted((c.action, c.name, c.reason) for c in changes)


@settings(max_examples=400, deadline=None)
@given(
    current=st.lists(st.sampled_from(POOL + FOREIGN), max_size=140),
    want=st.lists(st.sampled_from(POOL), max_size=140, unique=True),
)
def test_a_chain_read_as_a_block_gets_the_changes_a_list_gets(
    current: list[str], want: list[str]
) -> None:
    """Any chain (copies, foreign lines, any order) against any wanted lines: the same rules
    deleted and created for the same reasons, or the same bulk change; the commit leaves the
    wanted set once each; and what the commit is told to leave reads as what it does."""
    planned = Lines.of("DOCKYARD", current)
    as_block = list(diff.unordered("nat", "DOCKYARD", planned, want, _own(want)))
    as_list = list(diff.unordered("nat", "DOCKYARD", current, want))
    if any(c.kind == "rules" for c in as_list):
        assert [c.kind for c in as_block] == ["rules"]
        assert Counter(as_block[0].after["lines"] if as_block[0].after else []) == Counter(
            as_list[0].after["lines"] if as_list[0].after else []
        )
    else:
        assert _plain(as_block) == _plain(as_list)
    after = _committed(current, as_block)
    assert Counter(after) == Counter(want)
    # Told from what the plan proved (the Lines it planned on), and edited as text (another).
    for chain in (planned, Lines.of("DOCKYARD", current)):
        told = diff.committed(_tables(chain), as_block)
        assert told is not None and list(told["nat"]["DOCKYARD"]) == after
        assert not list(
            diff.unordered("nat", "DOCKYARD", told["nat"]["DOCKYARD"], want, _own(want))
        )


@settings(max_examples=300, deadline=None)
@given(
    want=st.lists(st.sampled_from(POOL), min_size=1, max_size=140, unique=True),
    data=st.data(),
)
def test_a_few_changed_lines_keep_the_chain_in_the_wanted_order(want: list[str], data: Any) -> None:
    """A chain in the wanted order but for a few lines in one stretch (changed, added or
    gone): deletes and inserts at their places there, so that after the commit the chain is
    the wanted block again, one string to compare."""
    start = data.draw(st.integers(0, len(want)))
    stop = data.draw(st.integers(start, min(len(want), start + 5)))
    others = [line for line in POOL if line not in want]
    instead = (
        data.draw(st.lists(st.sampled_from(others), max_size=5, unique=True)) if others else []
    )
    current = want[:start] + instead + want[stop:]
    assume(current != want)
    changes = list(
        diff.unordered("nat", "DOCKYARD", Lines.of("DOCKYARD", current), want, _own(want))
    )
    assert all(c.kind == "rule" for c in changes)
    if current:  # into an empty chain every rule is appended, in the wanted order
        assert all((c.after or {})["position"] != "end" for c in changes if c.action == "create")
    assert _committed(current, changes) == want
    told = diff.committed(_tables(Lines.of("DOCKYARD", current)), changes)
    assert told is not None
    chain = told["nat"]["DOCKYARD"]
    assert isinstance(chain, Lines) and chain.block == _own(want).block


def test_one_changed_mapping_is_a_delete_and_an_insert_in_its_place() -> None:
    want = POOL[:100]
    current = [*POOL[:40], POOL[120], *POOL[41:100]]
    changes = list(
        diff.unordered("nat", "DOCKYARD", Lines.of("DOCKYARD", current), want, _own(want))
    )
    assert [(c.action, c.name.split(" ", 2)[2], c.before, c.after, c.reason) for c in changes] == [
        ("delete", POOL[120], {"position": 41}, None, "not in the spec"),
        ("create", POOL[40], None, {"position": 41}, "missing"),
    ]
    same = Lines.of("DOCKYARD", want)
    assert list(diff.unordered("nat", "DOCKYARD", same, want, _own(want))) == []


def test_differences_far_apart_are_compared_as_a_set() -> None:
    """Two stretches far apart make one long one: the chain is split and compared as a set,
    with the same changes a list gets."""
    want = POOL[:140]
    current = [POOL[145], *POOL[1:139], POOL[146]]
    block = list(diff.unordered("nat", "DOCKYARD", Lines.of("DOCKYARD", current), want, _own(want)))
    assert _plain(block) == _plain(list(diff.unordered("nat", "DOCKYARD", current, want)))
    assert Counter(_committed(current, block)) == Counter(want)


def test_a_copy_of_a_wanted_rule_elsewhere_is_a_duplicate() -> None:
    want = POOL[:60]
    current = [*POOL[:30], POOL[5], *POOL[31:60]]  # POOL[30] replaced by a copy of POOL[5]
    changes = list(
        diff.unordered("nat", "DOCKYARD", Lines.of("DOCKYARD", current), want, _own(want))
    )
    assert [(c.action, c.name.split(" ", 2)[2], c.reason) for c in changes] == [
        ("delete", POOL[5], "duplicate"),
        ("create", POOL[30], "missing"),
    ]
    assert Counter(_committed(current, changes)) == Counter(want)


def test_wanted_lines_twice_are_compared_as_a_set() -> None:
    """A wanted line twice (no spec makes one: the set is None) never takes the block path."""
    assert _own([POOL[0], POOL[0]]).members is None
    want = [POOL[0], POOL[1], POOL[0]]
    changes = list(
        diff.unordered("nat", "DOCKYARD", Lines.of("DOCKYARD", [POOL[1]]), want, _own(want))
    )
    assert [(c.action, c.name.split(" ", 2)[2]) for c in changes] == [("create", POOL[0])]


@given(st.lists(st.sampled_from(POOL + FOREIGN + ["", "-j X"]), max_size=30), st.data())
def test_lines_are_the_list_they_hold(lines: list[str], data: Any) -> None:
    held = Lines.of("C", lines)
    fresh = Lines(held.block, "-A C ")  # as a read leaves it: split only when asked
    assert len(fresh) == len(lines) and fresh == lines and lines == fresh
    assert list(fresh) == lines and fresh[:] == lines and (fresh == held)
    if lines:
        index = data.draw(st.integers(-len(lines), len(lines) - 1))
        assert fresh[index] == lines[index] and lines[index] in fresh
    assert copy.deepcopy(Lines(held.block, "-A C ")) == lines
    assert type(copy.deepcopy(held)) is list
    assert fresh != [*lines, "-j Y"] and fresh != "-j X"


def test_a_saved_table_is_read_as_blocks_and_shown_as_lists() -> None:
    text = (
        "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n:DOCKYARD - [0:0]\n"
        '-A PREROUTING -m comment --comment "x" -j DOCKYARD\n'
        f"-A DOCKYARD {POOL[0]}\n-A DOCKYARD {POOL[1]}\nCOMMIT\n"
    )
    table = save.parse(text)["nat"]
    chain = table.rules["DOCKYARD"]
    assert (
        isinstance(chain, Lines) and chain.block == f"-A DOCKYARD {POOL[0]}\n-A DOCKYARD {POOL[1]}"
    )
    assert table.rules == {
        "PREROUTING": ['-m comment --comment "x" -j DOCKYARD'],
        "DOCKER": [],
        "DOCKYARD": POOL[:2],
    }
    shown = dataclasses.asdict(IptablesObserved("legacy", "", {"nat": table.rules}))
    assert shown["tables"]["nat"]["DOCKYARD"] == POOL[:2]
    assert type(shown["tables"]["nat"]["DOCKYARD"]) is list


@given(
    chunk=st.sampled_from([1, 3, 1 << 16]),
    common=st.text("ab\n", max_size=40),
    left=st.text("ab\n", max_size=12),
    right=st.text("ab\n", max_size=12),
    backwards=st.booleans(),
)
def test_shared_counts_the_characters_two_texts_share(
    chunk: int, common: str, left: str, right: str, backwards: bool
) -> None:
    a, b = (left + common, right + common) if backwards else (common + left, common + right)
    limit = min(len(a), len(b))
    naive = 0
    while naive < limit and (
        a[len(a) - 1 - naive] == b[len(b) - 1 - naive] if backwards else a[naive] == b[naive]
    ):
        naive += 1
    assert diff._shared(a, b, limit, backwards, chunk) == naive
    assert diff._shared(a, b, naive // 2, backwards, chunk) == naive // 2


@given(
    chunk=st.sampled_from([1, 4, 1 << 16]),
    text=st.text("ab\n", max_size=60),
    count=st.integers(0, 25),
)
def test_after_newlines_finds_the_nth_line(chunk: int, text: str, count: int) -> None:
    ends = [i + 1 for i, char in enumerate(text) if char == "\n"]
    expected = 0 if count == 0 else ends[count - 1] if count <= len(ends) else None
    assert diff._after_newlines(text, count, chunk) == expected


def test_a_told_insert_beyond_the_chain_or_a_missing_rule_is_read_back() -> None:
    chain = Lines.of("DOCKYARD", POOL[:3])
    beyond = diff.rule_change("create", "nat", "DOCKYARD", POOL[9], 5, "missing")
    absent = diff.rule_change("delete", "nat", "DOCKYARD", POOL[9], 1, "not in the spec")
    zero = diff.rule_change("create", "nat", "DOCKYARD", POOL[9], 0, "missing")
    for change in (beyond, absent, zero):
        assert diff.committed(_tables(chain), [change]) is None, change
    last = diff.rule_change("create", "nat", "DOCKYARD", POOL[9], 4, "missing")
    told = diff.committed(_tables(chain), [last])
    assert told is not None and told["nat"]["DOCKYARD"] == [*POOL[:3], POOL[9]]
    assert chain == POOL[:3]  # the observation itself is left as it was


def test_a_copy_in_place_of_a_missing_rule_is_not_taken_for_the_rule() -> None:
    """As many lines as wanted, all of them wanted, one twice and one missing: not converged
    (before, a chain compared by count and superset passed as one)."""
    current, want = [POOL[0], POOL[0]], [POOL[0], POOL[1]]
    for chain, own in ((current, None), (Lines.of("DOCKYARD", current), _own(want))):
        changes = list(diff.unordered("nat", "DOCKYARD", chain, want, own))
        assert [(c.action, c.name.split(" ", 2)[2], c.reason) for c in changes] == [
            ("delete", POOL[0], "duplicate"),
            ("create", POOL[1], "missing"),
        ]


def test_a_deleted_copy_of_a_rule_kept_before_it_is_edited_not_told() -> None:
    """`-D` takes the first copy: a rule standing before the stretch and again in it loses its
    first copy, so the chain is left in another order than the wanted block, and is told so."""
    want = POOL[:3]
    current = [POOL[0], POOL[1], POOL[0], POOL[2]]
    planned = Lines.of("DOCKYARD", current)
    changes = list(diff.unordered("nat", "DOCKYARD", planned, want, _own(want)))
    assert [(c.action, c.name.split(" ", 2)[2], c.reason) for c in changes] == [
        ("delete", POOL[0], "duplicate")
    ]
    assert planned.leaves is None
    told = diff.committed(_tables(planned), changes)
    assert told is not None and told["nat"]["DOCKYARD"] == [POOL[1], POOL[0], POOL[2]]
    assert _committed(current, changes) == [POOL[1], POOL[0], POOL[2]]


def test_what_the_plan_proved_is_told_only_for_its_own_changes() -> None:
    want = POOL[:50]
    current = [*POOL[:20], POOL[99], *POOL[21:50]]
    planned = Lines.of("DOCKYARD", current)
    changes = list(diff.unordered("nat", "DOCKYARD", planned, want, _own(want)))
    assert planned.leaves is not None
    told = diff.committed(_tables(planned), changes)
    assert told is not None and told["nat"]["DOCKYARD"] == want
    other = [changes[0]]  # the delete alone: not what was proved, so edited
    told = diff.committed(_tables(planned), other)
    assert told is not None and told["nat"]["DOCKYARD"] == [*POOL[:20], *POOL[21:50]]


def test_a_chain_reordered_by_hand_is_left_in_its_order() -> None:
    """The same rules in another order are the same chain: nothing to change, nothing rewritten
    to put it back in the spec's order."""
    want = POOL[:120]
    for current in ([*reversed(want)], [*want[60:], *want[:60]]):
        chain = Lines.of("DOCKYARD", current)
        assert list(diff.unordered("nat", "DOCKYARD", chain, want, _own(want))) == []


def _dnat(port: int) -> str:
    return f"-p tcp -m tcp --dport {port} -j DNAT --to-destination 172.17.0.2:{port}"


@pytest.mark.parametrize("changed", [50, 51, 52])
def test_more_than_bulk_changed_mappings_at_the_end_are_one_change(changed: int) -> None:
    """README: "More than 50 rules to add or remove in one of them are one change", at the
    chain's end too (a reviewer found 51 there planned one by one: newlines were counted,
    one fewer than the lines)."""
    kept = [_dnat(n) for n in range(100)]
    current = kept + [_dnat(1000 + n) for n in range(changed)]
    want = kept + [_dnat(2000 + n) for n in range(changed)]
    as_block = list(
        diff.unordered("nat", "DOCKYARD", Lines.of("DOCKYARD", current), want, _own(want))
    )
    as_set = list(diff.unordered("nat", "DOCKYARD", list(current), want))
    assert [c.kind for c in as_block] == [c.kind for c in as_set]
    assert (as_set[0].kind == "rules") == (changed > diff.BULK)


@pytest.mark.parametrize("odd", ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028"])
def test_a_comment_with_a_line_separator_reads_the_same_every_way(odd: str) -> None:
    """iptables-save prints a comment's bytes as they are; iptables-restore reads lines at
    "\\n" only. `parse` (blocks) keeps the rule whole; `_lines` (its fallback) and `listed`
    (the watch's `iptables -S CHAIN`) cut it at the separator, so a plan made from them
    deletes a rule text that does not exist (the commit fails at every run). Found by a
    reviewer; the three readings now agree."""
    rule = f'-p tcp -m tcp --dport 9 -m comment --comment "a{odd}b" -j RETURN'
    body = f":DOCKYARD - [0:0]\n-A DOCKYARD {rule}\n"
    text = f"*nat\n{body}COMMIT\n"
    assert list(save.parse(text)["nat"].rules["DOCKYARD"]) == [rule]
    assert save.listed(f"-N DOCKYARD\n-A DOCKYARD {rule}\n", "DOCKYARD") == [rule]
    assert list(save._lines(body).rules["DOCKYARD"]) == [rule]


@given(st.lists(st.sampled_from([*POOL[:5], *FOREIGN, "a\n-A C b", "-j X"]), max_size=6), st.data())
def test_comparing_lines_keeps_neither_split(lines: list[str], data: Any) -> None:
    """A watch compares each observation with the last one and keeps it: equality must not
    leave a chain of 100,000 rules split beside its block. It is still the lists' equality."""
    other = data.draw(
        st.lists(st.sampled_from([*POOL[:5], *FOREIGN, "a", "b", "-j X"]), max_size=6)
    )
    held = Lines(Lines.of("C", lines).block, "-A C ")
    for them in (other, Lines(Lines.of("C", other).block, "-A C "), Lines.of("D", other)):
        expected = held._split() == list(them._split() if isinstance(them, Lines) else them)
        assert (held == them) is expected, them
        assert held._lines is None
    repr(held)
    copy.deepcopy(held)
    assert held._lines is None


def test_the_tables_iptables_nft_save_could_not_show_are_named() -> None:
    text = (
        "# Table `filter' is incompatible, use 'nft' tool.\n"
        "# Generated by iptables-nft-save v1.8.9 (nf_tables)\n*nat\n:PREROUTING ACCEPT [0:0]\n"
        "COMMIT\n# Table `mangle' is incompatible, use 'nft' tool.\n"
        "# Table `raw' contains incompatible base-chains, use 'nft' tool to list them.\n"
    )
    assert save.incompatible(text) == ["filter", "mangle", "raw"]
    assert save.parse(text).keys() == {"nat"}
    commented = '-A FORWARD -m comment --comment "# Table `x\' is incompatible" -j ACCEPT'
    assert save.incompatible(f"*filter\n{commented}\nCOMMIT\n") == []


@pytest.mark.parametrize("reads", [False, True], ids=["legacy", "nft"])
def test_where_a_delete_reads_the_chain_a_large_chain_is_written_again(reads: bool) -> None:
    """iptables-nft reads the whole chain to find a rule named to `-D` (13 s at 100,000 rules)
    and takes it flushed and written again in 2.6 s: past BULK rules, a rule to remove makes
    the chain written again, in the wanted order. Legacy xtables deletes in place."""
    want = [_dnat(n) for n in range(diff.BULK + 10)]
    current = Lines.of("DOCKYARD", [*want[:20], _dnat(999), *want[21:]])
    changes = list(
        diff.unordered("nat", "DOCKYARD", current, want, _own(want), deletes_read_chain=reads)
    )
    if not reads:
        assert [(c.kind, c.action) for c in changes] == [("rule", "delete"), ("rule", "create")]
        return
    assert [(c.kind, c.action, c.reason) for c in changes] == [
        ("rules", "update", "1 missing, 1 not in the spec")
    ]
    assert _commands(changes) == ["-F DOCKYARD", "\n".join(f"-A DOCKYARD {r}" for r in want)]


def test_where_a_delete_reads_the_chain_missing_rules_are_still_appended() -> None:
    """Appending names no rule: the chain is not read, and not written again."""
    want = [_dnat(n) for n in range(diff.BULK + 10)]
    current = Lines.of("DOCKYARD", want[:-1])
    changes = list(diff.unordered("nat", "DOCKYARD", current, want, _own(want), True))
    assert [(c.kind, c.action) for c in changes] == [("rule", "create")]
    assert _commands(changes) == [f"-A DOCKYARD {want[-1]}"]


def test_where_a_delete_reads_the_chain_a_small_one_is_still_changed_rule_by_rule() -> None:
    want = [_dnat(n) for n in range(diff.BULK)]
    current = [*want[:-1], _dnat(999)]
    changes = list(diff.unordered("nat", "DOCKYARD", current, want, None, True))
    assert [(c.kind, c.action) for c in changes] == [("rule", "delete"), ("rule", "create")]


@st.composite
def layouts(draw: Any) -> tuple[str, bool]:
    """A table's body: headers, then runs of rules by chain (long runs, empty chains, a
    chain's rules in two places, runs out of header order, rules without a header); and
    whether it is iptables-save's own layout (each chain's rules together, in header order)."""
    chains = draw(st.lists(st.sampled_from(["A", "AB", "B", "C", "DOCKYARD"]), unique=True))
    runs = draw(
        st.lists(
            st.tuples(st.sampled_from(["A", "AB", "B", "C", "DOCKYARD", "Z"]), st.integers(1, 300)),
            max_size=6,
        )
    )
    heads = "".join(f":{chain} - [0:0]\n" for chain in chains)
    body = "".join(
        f"-A {chain} -p tcp -m tcp --dport {n} -j ACCEPT\n"
        for chain, count in runs
        for n in range(count)
    )
    names = [chain for chain, _ in runs]
    own = (
        len(set(names)) == len(names)
        and all(name in chains for name in names)
        and names == sorted(names, key=chains.index)
    )
    return heads + body, own


@given(layouts())
@settings(max_examples=300)
def test_the_blocks_are_the_lines_or_nothing(layout: tuple[str, bool]) -> None:
    """Read block by block (each block's end found in a few steps), a table is the table read
    line by line, or the fast way gives up; on iptables-save's own layout it never does."""
    body, own = layout
    text = "*t\n" + body  # as in a save: the table's header line before it
    fast = save._blocks(text, 3, len(text))
    slow = save._lines(body)
    if own:
        assert fast is not None
    if fast is not None:
        assert fast.chains == slow.chains
        assert {c: list(r) for c, r in fast.rules.items()} == {
            c: list(r) for c, r in slow.rules.items() if c in slow.chains or r
        }
