"""A watch that reads only the chains nf_tables' events name: the diff of those chains is the
full diff's restricted to them, and the events decide which chains those are."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.bridge import BridgeLink, BridgeObserved
from dockyard.reconcilers.iptables import NOTHING, Iptables, IptablesObserved, Token, diff
from dockyard.reconcilers.iptables.rules import wanted
from dockyard.spec import load_text
from dockyard.state import netfilter
from tests.unit.test_netfilter import DELRULE, NEWRULE, feed, generation, rule, table

SPEC = load_text(
    "version: 1\nnetwork:\n  iptables_backend: nft\n  published_ports:\n"
    "    - {host_port: 80, container_ip: 172.17.0.2, container_port: 80}\n"
    "    - {host_port: 81, container_ip: 172.17.0.3, container_port: 81}\n"
)
AUTO = load_text("version: 1\n")
SUBNET = ipaddress.IPv4Network("172.17.0.0/16")


def drifted() -> dict[str, dict[str, list[str]]]:
    """Tables with something wrong in every chain dockyard cares about."""
    want = wanted(SPEC, SUBNET)
    nat = {
        chain: [r.text for r in rules] for (t, chain), rules in want.builtin.items() if t == "nat"
    }
    nat["POSTROUTING"] = []  # MASQUERADE deleted
    nat["OUTPUT"] = []  # the jump to DOCKYARD deleted
    nat["PREROUTING"].insert(0, "-j ACCEPT")  # a foreign rule: stays
    nat["DOCKYARD"] = want.own[("nat", "DOCKYARD")][1:]  # one DNAT gone
    filt = {c: [r.text for r in rules] for (t, c), rules in want.builtin.items() if t == "filter"}
    filt["FORWARD"] = filt["FORWARD"][::-1]  # out of order
    filt["DOCKYARD"] = [*want.own[("filter", "DOCKYARD")], "-p udp -j ACCEPT"]  # one too many
    filt["DOCKER"] = []
    return {"nat": nat, "filter": filt}  # nat DOCKER and filter DOCKER-USER missing


@pytest.mark.parametrize(
    "only",
    [
        {"nat": {"POSTROUTING"}},
        {"nat": {"DOCKYARD", "DOCKER"}},
        {"filter": {"FORWARD", "DOCKER-USER"}},
        {"nat": {"PREROUTING", "OUTPUT"}, "filter": {"DOCKYARD"}},
    ],
    # the same ids in every process (a set's order follows the hash seed), for pytest-xdist
    ids=lambda only: " ".join(f"{t}:{','.join(sorted(cs))}" for t, cs in sorted(only.items())),
)
def test_the_diff_of_some_chains_is_the_full_diff_restricted_to_them(
    only: dict[str, set[str]],
) -> None:
    want = wanted(SPEC, SUBNET)
    for name, chains in drifted().items():
        full = diff.install(name, chains, want)
        scope = frozenset(only.get(name, ()))
        read = {chain: lines for chain, lines in chains.items() if chain in scope}
        part = diff.install(name, read, want, only=scope)
        assert part == [c for c in full if c.name.split(" ")[1] in scope]
        assert not scope or part  # every chain chosen above has something to change


def seen() -> Seen:
    out = Seen()
    link = BridgeLink("docker0", "bridge", 1500, None, True, ("172.17.0.1/16",))
    out.add("bridge", BridgeObserved(link=link))
    return out


def observed(scope: Any, tables: Any = None) -> Seen:
    out = seen()
    out.add("iptables", IptablesObserved("nft", "set in the spec", tables or {}, scope))
    return out


def test_a_reconciler_told_that_nothing_changed_finds_nothing_to_do() -> None:
    assert Iptables().diff(SPEC, observed(NOTHING)) == []
    assert Iptables().diff(SPEC, observed(None)) != []  # the same empty tables, read in full


def test_a_partial_read_changes_only_what_it_read() -> None:
    scope = {"nat": frozenset({"POSTROUTING"}), "filter": frozenset()}
    changes = Iptables().diff(SPEC, observed(scope, {"nat": {"POSTROUTING": []}}))
    wanted_there = wanted(SPEC, SUBNET).builtin[("nat", "POSTROUTING")]
    assert [(c.action, c.name) for c in changes] == [
        ("create", f"nat POSTROUTING {r.text}") for r in wanted_there
    ]


def test_between_passes_only_the_rules_of_the_built_in_chains_are_kept() -> None:
    """Nor the last whole read (at 100,000 ports 30 MB, kept for a commit in its own pass):
    a watch held it from its first converge to its first partial read."""
    r = Iptables()
    r.diff(SPEC, observed(None))
    r._read = (SPEC, observed(None), Token())
    r.forget()
    assert r._read is None
    assert r._memo is not None and r._memo.wanted.own == {}
    assert r._memo.wanted.builtin == wanted(SPEC, SUBNET).builtin
    scope = {"nat": frozenset({"POSTROUTING"}), "filter": frozenset()}
    r.diff(SPEC, observed(scope, {"nat": {"POSTROUTING": []}}))
    assert r._memo.wanted.own == {}  # not needed for a built-in chain
    scope = {"nat": frozenset({"DOCKYARD"}), "filter": frozenset()}
    changes = r.diff(SPEC, observed(scope, {"nat": {"DOCKYARD": []}}))
    assert r._memo.wanted.own == wanted(SPEC, SUBNET).own
    assert changes and all(c.name.startswith("nat DOCKYARD ") for c in changes)


def watching(backend: str = "nft") -> Iptables:
    r = Iptables()
    r.backend = backend
    r._events = netfilter.Events()
    return r


def test_the_chains_the_events_name_are_the_ones_read() -> None:
    r = watching()
    assert r._events is not None
    feed(r._events, rule(DELRULE, "nat", "POSTROUTING", gen=5), generation(5))
    feed(r._events, rule(NEWRULE, "filter", "FORWARD", gen=6), generation(6))
    scope = r._nft_changes(SPEC, Token(nft=4), Token(nft=6))
    assert scope == {"nat": frozenset({"POSTROUTING"}), "filter": frozenset({"FORWARD"})}
    assert r._nft_changes(SPEC, Token(nft=6), Token(nft=6)) == NOTHING


def test_commits_elsewhere_are_nothing_to_read() -> None:
    r = watching()
    assert r._events is not None
    feed(r._events, rule(NEWRULE, "filter", "INPUT", family=10, gen=5), generation(5))  # ip6
    feed(r._events, rule(NEWRULE, "mangle", "PREROUTING", gen=6), generation(6))
    assert r._nft_changes(SPEC, Token(nft=4), Token(nft=5)) == NOTHING
    # A spec that names the backend has no choice to make: other IPv4 tables do not matter...
    assert r._nft_changes(SPEC, Token(nft=4), Token(nft=6)) == NOTHING
    # ...but with `auto`, any IPv4 table can decide it: everything is read.
    assert r._nft_changes(AUTO, Token(nft=4), Token(nft=6)) is None


@pytest.mark.parametrize(
    "why",
    ["a whole table", "no events", "a lost generation", "the legacy backend", "no module"],
)
def test_when_the_events_cannot_say_everything_is_read(why: str) -> None:
    r = watching("legacy" if why == "the legacy backend" else "nft")
    assert r._events is not None
    feed(
        r._events,
        table("nat", gen=5) if why == "a whole table" else rule(DELRULE, "nat", "X", gen=5),
    )
    feed(r._events, generation(5))
    start = 3 if why == "a lost generation" else 4
    if why == "no events":
        r._events = None
    since = Token(nft=None if why == "no module" else start)
    assert r._nft_changes(SPEC, since, Token(nft=5)) is None
