"""What a commit leaves, told without reading the tables back (`diff.committed`), which the
verify pass takes instead of a second read when the tables' token shows that commit alone."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.change import Change
from dockyard.reconcilers.iptables import Iptables, IptablesObserved, Token, diff, moved_by, rules
from dockyard.reconcilers.iptables.save import Lines
from dockyard.spec import Spec
from dockyard.state.host import Host
from dockyard.state.netfilter import TableInfo

# More than BULK of them, so that both a change per rule and one bulk change are planned.
POOL = [f"-p tcp -m tcp --dport {n} -j DNAT --to-destination 172.17.0.2:{n}" for n in range(140)]
FORWARD = ["-j DOCKER-USER", "-s 10.1.1.1/32 -j ACCEPT"]


def _tables(nat_own: list[str], filter_own: list[str]) -> dict[str, dict[str, list[str]]]:
    return {
        "nat": {"PREROUTING": [], "DOCKYARD": nat_own, "DOCKYARD-HAIRPIN": []},
        "filter": {"FORWARD": list(FORWARD), "DOCKYARD": filter_own},
    }


@settings(max_examples=300, deadline=None)
@given(
    nat_now=st.lists(st.sampled_from(POOL), max_size=120),
    nat_want=st.lists(st.sampled_from(POOL), max_size=120, unique=True),
    filter_now=st.lists(st.sampled_from(POOL), max_size=60),
    filter_want=st.lists(st.sampled_from(POOL), max_size=60, unique=True),
)
def test_what_a_commit_to_our_chains_leaves_is_what_the_plan_wanted(
    nat_now: list[str], nat_want: list[str], filter_now: list[str], filter_want: list[str]
) -> None:
    """Copies, foreign lines and any mix of kept, missing and unwanted rules: planning again on
    what the commit is said to leave finds nothing to do, and nothing else moved."""
    tables = _tables(list(nat_now), list(filter_now))
    changes = [
        *diff.unordered("nat", "DOCKYARD", nat_now, nat_want),
        *diff.unordered("filter", "DOCKYARD", filter_now, filter_want),
    ]
    after = diff.committed(tables, changes)
    assert after is not None
    assert list(diff.unordered("nat", "DOCKYARD", after["nat"]["DOCKYARD"], nat_want)) == []
    assert (
        list(diff.unordered("filter", "DOCKYARD", after["filter"]["DOCKYARD"], filter_want)) == []
    )
    assert after["filter"]["FORWARD"] == FORWARD
    assert tables == _tables(nat_now, filter_now)  # the observation itself is left as it was


def test_a_delete_removes_the_first_copy_as_the_commit_does() -> None:
    a, b = POOL[:2]
    delete = diff.rule_change("delete", "nat", "DOCKYARD", a, 3, "duplicate")
    after = diff.committed(_tables([a, b, a], []), [delete])
    assert after is not None and after["nat"]["DOCKYARD"] == [b, a]


def test_what_cannot_be_told_is_read_back() -> None:
    """A chain removed, a chain made that is there, a rule in a chain neither read nor made, a
    rule to delete that is not there, an insert past the end: None, the tables are read
    again."""
    tables = _tables([POOL[0]], [])
    removed = diff.chain_change("delete", "nat", "DOCKYARD-HAIRPIN", "not wanted")
    made_twice = diff.chain_change("create", "nat", "DOCKYARD", "missing")
    unread = diff.rule_change("create", "nat", "OUTPUT", POOL[1], None, "missing")
    absent = diff.rule_change("delete", "nat", "DOCKYARD", POOL[1], 1, "not in the spec")
    past_end = diff.rule_change("create", "filter", "FORWARD", "-j DOCKYARD", 4, "missing")
    own = diff.rule_change("create", "nat", "DOCKYARD", POOL[1], None, "missing")
    for change in (removed, made_twice, unread, absent, past_end):
        assert diff.committed(tables, [change, own]) is None, change
    assert diff.committed(tables, [own]) == _tables([POOL[0], POOL[1]], [])


def test_a_chain_made_holds_the_rules_written_into_it() -> None:
    made = diff.chain_change("create", "nat", "DOCKER", "missing")
    first = diff.rule_change("create", "nat", "DOCKER", POOL[1], None, "missing")
    jump = diff.rule_change("create", "filter", "FORWARD", "-j DOCKYARD", 2, "missing")
    after = diff.committed(_tables([], []), [made, first, jump])
    assert after is not None
    assert after["nat"]["DOCKER"] == [POOL[1]]
    assert after["filter"]["FORWARD"] == ["-j DOCKER-USER", "-j DOCKYARD", FORWARD[1]]
    assert diff.committed({}, [made, first]) == {"nat": {"DOCKER": [POOL[1]]}}


# Any host, as far as the plan reads it: each built-in chain a mix of dockyard's rules (stale
# ones too) and other programs' (jumps that must stay above dockyard's among them), each chain
# of dockyard's there or not, with any rules.
SPEC = Spec.model_validate(
    {
        "version": 1,
        "network": {
            "icc": False,
            "published_ports": [
                {"host_port": 80 + n, "container_ip": f"172.17.0.{n + 2}", "container_port": 80}
                for n in range(4)
            ],
        },
    }
)
WANT = rules.wanted(SPEC, ipaddress.IPv4Network("172.17.0.0/16"))
STALE = rules.with_comment("-i docker9 -j ACCEPT", rules.tag_of("filter FORWARD old"))
FOREIGN = {
    "FORWARD": ["-j DOCKER-ISOLATION-STAGE-1", "-j DOCKER-USER", "-s 10.1.1.1/32 -j ACCEPT", STALE],
    "POSTROUTING": ["-s 10.0.0.0/8 ! -o eth0 -j MASQUERADE"],
    "PREROUTING": ["-m addrtype --dst-type LOCAL -j DOCKER"],
    "INPUT": [STALE],
}


@st.composite
def hosts(draw: st.DrawFn) -> dict[str, dict[str, list[str]]]:
    tables: dict[str, dict[str, list[str]]] = {}
    for table in rules.TABLES:
        chains = tables[table] = {}
        for chain in rules.BUILTIN[table]:
            ours = [r.text for r in WANT.builtin.get((table, chain), [])]
            pool = ours + FOREIGN.get(chain, [])
            chains[chain] = draw(st.lists(st.sampled_from(pool), max_size=9)) if pool else []
        for chain in rules.ENSURED[table]:
            if not draw(st.booleans()):
                continue
            pool = WANT.own.get((table, chain), []) + POOL[:3]
            chains[chain] = draw(st.lists(st.sampled_from(pool), max_size=8))
    return tables


@settings(max_examples=300, deadline=None)
@given(host=hosts(), blocks=st.booleans())
def test_what_any_install_leaves_is_what_its_plan_wanted(
    host: dict[str, dict[str, list[str]]], blocks: bool
) -> None:
    """From any host, built-in chains and chains made included: planning again on what the
    commit is said to leave finds nothing to do, whether the chains were read as lists or as
    iptables-save's blocks of text."""
    read: dict[str, dict[str, Sequence[str]]] = {
        table: {c: Lines.of(c, lines) if blocks else list(lines) for c, lines in chains.items()}
        for table, chains in host.items()
    }
    changes = [c for table in rules.TABLES for c in diff.install(table, read[table], WANT)]
    after = diff.committed(read, changes)
    assert after is not None, changes
    assert [c for table in rules.TABLES for c in diff.install(table, after[table], WANT)] == []
    assert read == host  # the observation itself is left as it was


def test_a_bulk_change_leaves_its_lines_after() -> None:
    before = {"count": 2, "lines": POOL[:2]}
    bulk = Change(
        "iptables", "rules", "filter DOCKYARD", "update", before, {"lines": POOL[5:9]}, ""
    )
    gone = Change("iptables", "rules", "nat DOCKYARD", "delete", before, None, "")
    after = diff.committed(_tables(POOL[:2], POOL[:2]), [bulk, gone])
    assert after is not None
    assert after["filter"]["DOCKYARD"] == POOL[5:9]
    assert after["nat"]["DOCKYARD"] == []


def _info(entries: int, size: int = 1000, hooks: int = 0x1F) -> TableInfo:
    return TableInfo(hooks, (0,) * 5, (0,) * 5, entries, size)


ONE_CHANGED = [
    diff.rule_change("delete", "nat", "DOCKYARD", POOL[0], 1, "not in the spec"),
    diff.rule_change("create", "nat", "DOCKYARD", POOL[1], None, "missing"),
    diff.rule_change("create", "filter", "DOCKYARD", POOL[1], None, "missing"),
]


def test_entries_added_counts_rules_in_and_out_per_table() -> None:
    bulk = Change(
        "iptables",
        "rules",
        "filter DOCKYARD",
        "update",
        {"lines": POOL[:5]},
        {"lines": POOL[:2]},
        "",
    )
    assert diff.entries_added(ONE_CHANGED) == {"nat": 0, "filter": 1}
    assert diff.entries_added([*ONE_CHANGED, bulk]) == {"nat": 0, "filter": -2}
    made = diff.chain_change("create", "nat", "DOCKER", "missing")
    gone = diff.chain_change("delete", "filter", "DOCKYARD", "not wanted")
    assert diff.entries_added([made, gone]) == {"nat": 2, "filter": -2}


def test_a_commit_alone_moves_nft_by_one_generation_per_table() -> None:
    assert moved_by(Token("unread", 7), Token("unread", 9), "nft", ONE_CHANGED)
    assert not moved_by(Token("unread", 7), Token("unread", 10), "nft", ONE_CHANGED)  # another
    assert not moved_by(Token("unread", 7), Token("unread", 8), "nft", ONE_CHANGED)
    assert not moved_by(Token(None, 7), Token((), 9), "nft", ONE_CHANGED)  # legacy moved too
    assert not moved_by(Token("unread", None), Token("unread", 2), "nft", ONE_CHANGED)


def test_a_commit_alone_moves_each_legacy_table_by_its_rules() -> None:
    before = Token((("filter", _info(10)), ("nat", _info(20))), "unread")
    assert moved_by(
        before,
        Token((("filter", _info(11)), ("nat", _info(20, 1200))), "unread"),
        "legacy",
        ONE_CHANGED,
    )
    for after in (
        Token((("filter", _info(11)), ("nat", _info(21))), "unread"),  # one rule more in nat
        Token((("filter", _info(10)), ("nat", _info(20))), "unread"),  # filter's rule missing
        Token((("filter", _info(11, hooks=0x1E)), ("nat", _info(20))), "unread"),
        Token((("filter", _info(11)), ("nat", _info(20)), ("raw", _info(5))), "unread"),
        Token((("filter", _info(11)), ("nat", _info(20))), 4),  # nf_tables moved
        Token(None, "unread"),
    ):
        assert not moved_by(before, after, "legacy", ONE_CHANGED), after
    assert not moved_by(before, before, None, ONE_CHANGED)
    assert not moved_by(None, before, "legacy", ONE_CHANGED)


# The kernel's own figures (IPT_SO_GET_INFO in a new namespace): a new filter table is on three
# hooks, nat on four; each holds a policy per hook and the entry that ends the table.
FROM_SCRATCH = [
    diff.chain_change("create", "nat", "DOCKYARD", "missing"),
    diff.rule_change("create", "nat", "POSTROUTING", "-j MASQUERADE", 1, "missing"),
    diff.chain_change("create", "filter", "DOCKYARD", "missing"),
    diff.chain_change("create", "filter", "X", "missing"),
    diff.rule_change("create", "filter", "FORWARD", "-j ACCEPT", 1, "missing"),
]


def test_tables_a_commit_made_are_counted_from_their_built_in_chains() -> None:
    made = Token((("filter", _info(9, hooks=0b01110)), ("nat", _info(8, hooks=0b11011))), 1)
    assert moved_by(Token((), 1), made, "legacy", FROM_SCRATCH)
    assert not moved_by(Token((), 1), made, "legacy", FROM_SCRATCH[:-1])  # a rule unaccounted
    only_nat = FROM_SCRATCH[:2]  # filter was made by another program
    assert not moved_by(Token((), 1), made, "legacy", only_nat)
    assert not moved_by(Token((("raw", _info(5)),), 1), made, "legacy", FROM_SCRATCH)  # gone


@given(
    lines=st.lists(st.sampled_from(POOL), unique=True, max_size=100),
    picks=st.lists(st.integers(0, 99), max_size=30),
)
def test_where_the_doomed_rules_stand_whether_few_or_many(
    lines: list[str], picks: list[int]
) -> None:
    among = {lines[i] for i in picks if i < len(lines)}
    assert diff._indexes(lines, among) == [i for i, line in enumerate(lines) if line in among]


def test_what_a_commit_left_is_told_to_its_verify_pass_only(monkeypatch: Any) -> None:
    """A watch pass starts with a glance: what the last commit left is not taken for it, even
    when its verify pass never observed the firewall (a concern before it failed)."""
    r = Iptables()
    token = Token("unread", 5)
    r._expected = (token, IptablesObserved("nft", "set in the spec", {}))
    monkeypatch.setattr(r, "_token", lambda spec: token)
    r.glance(Spec.model_validate({"version": 1}), cast(Host, None), None)
    assert r._expected is None
