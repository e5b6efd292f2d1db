"""The watch's cheap looks at the firewall, parsed without a kernel: nfnetlink messages built
by pyroute2 (the oracle for their format), `IPT_SO_GET_INFO` answers packed by the layout of
linux/netfilter_ipv4/ip_tables.h, and the event log's bookkeeping."""

from __future__ import annotations

import errno
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from pyroute2.netlink.nfnetlink.nftsocket import (
    nft_chain_msg,
    nft_gen_msg,
    nft_rule_msg,
    nft_set_msg,
    nft_table_msg,
)

from dockyard.reconcilers.iptables.save import listed
from dockyard.state import netfilter
from dockyard.state.netfilter import EVERYTHING, Events, Touched

NFT = netfilter.NFNL_SUBSYS_NFTABLES << 8
NEWGEN = NFT | netfilter.NFT_MSG_NEWGEN
NEWTABLE, NEWCHAIN, DELCHAIN, NEWRULE, DELRULE, NEWSET = 0, 3, 5, 6, 8, 9


def encoded(msg: Any, kind: int, family: int = 2, gen: int = 0, **attrs: Any) -> bytes:
    """As the kernel announces it: `gen`, the generation of the commit the message belongs
    to, in the nfgenmsg's res_id (its low 16 bits)."""
    msg["header"]["type"] = kind
    msg["header"]["flags"] = 0
    msg["header"]["sequence_number"] = 0
    msg["header"]["pid"] = 0
    msg["nfgen_family"] = family
    msg["res_id"] = gen & 0xFFFF
    msg["attrs"] = list(attrs.items())
    msg.encode()
    return bytes(msg.data)


def generation(n: int) -> bytes:
    return encoded(nft_gen_msg(), NEWGEN, family=0, gen=n, NFTA_GEN_ID=n)


def rule(kind: int, table: str, chain: str, family: int = 2, gen: int = 0) -> bytes:
    return encoded(
        nft_rule_msg(), NFT | kind, family, gen, NFTA_RULE_TABLE=table, NFTA_RULE_CHAIN=chain
    )


def chain(kind: int, table: str, name: str, family: int = 2, gen: int = 0) -> bytes:
    return encoded(
        nft_chain_msg(), NFT | kind, family, gen, NFTA_CHAIN_TABLE=table, NFTA_CHAIN_NAME=name
    )


def table(name: str, family: int = 2, gen: int = 0) -> bytes:
    return encoded(nft_table_msg(), NFT | NEWTABLE, family, gen, NFTA_TABLE_NAME=name)


def feed(events: Events, *data: bytes) -> None:
    for kind, payload in netfilter.messages(b"".join(data)):
        events.take(kind, payload)


# The generation


def test_the_generation_is_read_from_the_kernels_answer() -> None:
    assert netfilter.parse_generation(generation(4242)) == 4242


def test_a_refusal_is_an_os_error_with_the_kernels_code() -> None:
    error = struct.pack("=IHHIIi", 36, netfilter.NLMSG_ERROR, 0, 1, 0, -errno.EPERM) + bytes(16)
    with pytest.raises(OSError) as e:
        netfilter.parse_generation(error)
    assert e.value.errno == errno.EPERM


def test_an_answer_without_a_generation_is_an_error() -> None:
    with pytest.raises(OSError, match="no generation"):
        netfilter.parse_generation(encoded(nft_gen_msg(), NEWGEN, family=0))
    with pytest.raises(OSError, match="no generation"):
        netfilter.parse_generation(generation(7)[:-4])  # truncated: the walk stops


# What an event is about


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (rule(DELRULE, "nat", "POSTROUTING"), Touched(2, "nat", "POSTROUTING")),
        (rule(NEWRULE, "filter", "DOCKYARD"), Touched(2, "filter", "DOCKYARD")),
        (chain(NEWCHAIN, "filter", "FORWARD"), Touched(2, "filter", "FORWARD")),
        (chain(DELCHAIN, "filter", "DOCKER-USER", family=10), Touched(10, "filter", "DOCKER-USER")),
        (table("nat"), Touched(2, "nat", None)),
        (
            encoded(nft_set_msg(), NFT | NEWSET, 2, NFTA_SET_TABLE="filter"),
            Touched(2, "filter", None),
        ),
        (encoded(nft_table_msg(), NFT | NEWTABLE, 2), EVERYTHING),  # no table named
    ],
    ids=["delrule", "newrule", "policy", "ip6 chain", "table", "set", "unnamed"],
)
def test_each_event_names_its_chain_or_its_table(data: bytes, expected: Touched) -> None:
    [(kind, payload)] = netfilter.messages(data)
    assert netfilter.touched(kind, payload) == expected


def test_a_message_of_another_subsystem_could_be_about_anything() -> None:
    data = rule(DELRULE, "nat", "POSTROUTING")
    [(kind, payload)] = netfilter.messages(data)
    assert netfilter.touched((11 << 8) | (kind & 0xFF), payload) == EVERYTHING


# The event log


def test_since_is_the_union_of_the_commits_in_between() -> None:
    events = Events()
    feed(events, rule(DELRULE, "nat", "POSTROUTING", gen=5), generation(5))
    feed(
        events,
        rule(NEWRULE, "filter", "FORWARD", gen=6),
        chain(NEWCHAIN, "filter", "X", gen=6),
        generation(6),
    )
    feed(events, generation(7))
    assert events.since(4, 5) == {Touched(2, "nat", "POSTROUTING")}
    assert events.since(4, 7) == {
        Touched(2, "nat", "POSTROUTING"),
        Touched(2, "filter", "FORWARD"),
        Touched(2, "filter", "X"),
    }
    assert events.since(6, 7) == frozenset()
    assert events.since(7, 7) == frozenset()


def test_a_generation_never_announced_makes_since_unsure() -> None:
    events = Events()
    feed(events, rule(DELRULE, "nat", "POSTROUTING", gen=5), generation(5))
    feed(events, generation(7))
    assert events.since(4, 7) is None  # 6 was not seen
    assert events.since(3, 5) is None  # nor 4
    assert events.since(6, 7) == frozenset()
    assert events.since(7, 5) is None  # backwards (a new namespace, a wrapped counter)


def test_lost_messages_make_every_commit_up_to_the_generation_then_unsure() -> None:
    events = Events()
    feed(events, rule(DELRULE, "nat", "POSTROUTING", gen=5))
    events.lost(5)  # ENOBUFS, found at generation 5: what else 5 did is unknown
    feed(events, generation(5))  # still in the queue: not trusted
    feed(events, rule(NEWRULE, "nat", "DOCKYARD", gen=6), generation(6))
    assert events.since(4, 5) is None
    assert events.since(4, 6) is None
    assert events.since(5, 6) == {Touched(2, "nat", "DOCKYARD")}


def test_a_commit_announced_before_the_loss_was_found_is_forgotten_too() -> None:
    """Two overflows can make one ENOBUFS: generation 7 closed in between, then 8 lost
    messages; the loss, found at 8, takes 7 with it."""
    events = Events()
    feed(events, rule(NEWRULE, "nat", "X", gen=7), generation(7))
    assert events.since(6, 7) == {Touched(2, "nat", "X")}
    events.lost(8)
    feed(events, generation(8), generation(9))
    assert events.since(6, 7) is None
    assert events.since(7, 8) is None
    assert events.since(8, 9) == frozenset()


def test_messages_left_of_a_commit_whose_end_was_lost_never_count_for_the_next() -> None:
    """Seen with 100,000 ports: the socket overflowed while the filter table's commit was
    announced; the loss was read first, then the rest of that commit's messages still
    queued, but not its NEWGEN. They were taken for the next commit (a rule deleted by hand in
    nat POSTROUTING), and the watch then read the 100,000 rules of filter DOCKYARD twice."""
    events = Events()
    feed(events, rule(NEWRULE, "filter", "DOCKYARD", gen=3))
    events.lost(3)
    feed(events, rule(NEWRULE, "filter", "DOCKYARD", gen=3))  # queued after the loss
    feed(events, rule(DELRULE, "nat", "POSTROUTING", gen=4), generation(4))
    assert events.since(3, 4) == {Touched(2, "nat", "POSTROUTING")}


def test_a_commit_whose_newgen_was_dropped_leaves_nothing_to_the_next() -> None:
    events = Events()
    feed(events, generation(2))
    feed(events, rule(NEWRULE, "filter", "DOCKYARD", gen=3))  # generation(3) never arrives
    feed(events, rule(DELRULE, "nat", "POSTROUTING", gen=4), generation(4))
    assert events.since(3, 4) == {Touched(2, "nat", "POSTROUTING")}
    assert events.since(2, 4) is None  # 3 was not seen closing


def test_since_waits_for_the_reading_thread_at_most_as_long_as_told() -> None:
    events = Events()
    assert events.since(4, 5, wait=0.01) is None


def test_only_the_last_generations_are_kept() -> None:
    events = Events()
    for n in range(1, Events.KEEP + 11):
        feed(events, generation(n))
    assert events.since(0, 5) is None
    assert events.since(10, Events.KEEP + 10) == frozenset()


# Legacy tables


def test_table_info_is_read_in_the_kernels_layout() -> None:
    raw = struct.pack(
        "=32sI5I5III",
        b"nat",
        0b11011,
        *(0, 632, 0xFFFFFFFF, 784, 1416),
        *(480, 632, 0xFFFFFFFF, 1264, 1872),
        100012,
        24002856,
    )
    assert len(raw) == 84  # sizeof(struct ipt_getinfo)
    info = netfilter.parse_table_info(raw)
    assert info == netfilter.TableInfo(
        27, (0, 632, 0xFFFFFFFF, 784, 1416), (480, 632, 0xFFFFFFFF, 1264, 1872), 100012, 24002856
    )


def test_the_legacy_tables_are_those_the_namespace_lists(tmp_path: Path) -> None:
    assert netfilter.legacy_tables(tmp_path) is None  # no ip_tables module
    (tmp_path / "net").mkdir()
    (tmp_path / "net/ip_tables_names").write_text("nat\nfilter\n")
    assert netfilter.legacy_tables(tmp_path) == ("filter", "nat")
    (tmp_path / "net/ip_tables_names").write_text("")
    assert netfilter.legacy_tables(tmp_path) == ()


# One chain, as `iptables -S CHAIN` prints it


def test_a_listed_chain_gives_its_rules_as_a_save_would() -> None:
    text = (
        "-P POSTROUTING ACCEPT\n"
        '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -m comment --comment "dockyard:1" '
        "-j MASQUERADE\n"
        "-A POSTROUTING -j ACCEPT\n"
    )
    assert listed(text, "POSTROUTING") == [
        '-s 172.17.0.0/16 ! -o docker0 -m comment --comment "dockyard:1" -j MASQUERADE',
        "-j ACCEPT",
    ]
    assert listed("-N DOCKYARD\n", "DOCKYARD") == []


# Does a chain exist (iptables-nft 1.8.9 calls a missing one "incompatible")


def test_the_chain_request_names_the_table_and_chain_as_pyroute2_reads_them() -> None:
    msg = nft_chain_msg(netfilter.chain_request("filter", "DOCKER-USER", seq=9))
    msg.decode()
    assert msg["header"]["type"] == NFT | netfilter.NFT_MSG_GETCHAIN
    assert msg["header"]["sequence_number"] == 9
    assert msg["nfgen_family"] == 2
    assert msg.get_attr("NFTA_CHAIN_TABLE") == "filter"
    assert msg.get_attr("NFTA_CHAIN_NAME") == "DOCKER-USER"


def refusal(code: int) -> bytes:
    return struct.pack("=IHHIIi", 36, netfilter.NLMSG_ERROR, 0, 1, 0, -code) + bytes(16)


def test_the_answer_says_whether_the_chain_is_there() -> None:
    assert netfilter.parse_chain_answer(chain(NEWCHAIN, "filter", "DOCKER-USER"))
    assert not netfilter.parse_chain_answer(refusal(errno.ENOENT))
    with pytest.raises(OSError) as e:
        netfilter.parse_chain_answer(refusal(errno.EPERM))
    assert e.value.errno == errno.EPERM
    with pytest.raises(OSError, match="no chain and no error"):
        netfilter.parse_chain_answer(b"")


def _iptables_listening(
    monkeypatch: pytest.MonkeyPatch, loaded: list[bool], raises: bool = True
) -> tuple[Any, list[int]]:
    """An Iptables whose listener records its starts and ends at once (raising, or returning
    as `netfilter.listen` does when its socket fails), in a kernel whose
    nf_tables module is loaded when `loaded[0]` is (this kernel has it built in, so the
    unloaded state cannot be made here)."""
    from dockyard.reconcilers import iptables
    from dockyard.state import tables_ahead

    started: list[int] = []

    def ending(events: Events, wake: Any, stopping: Any) -> None:
        started.append(1)
        if raises:
            raise OSError(errno.EPERM, "refused")

    monkeypatch.setattr(tables_ahead, "might_load_module", lambda name: not loaded[0])
    monkeypatch.setattr(netfilter, "listen", ending)
    return iptables.Iptables(), started


def _settle(r: Any) -> None:
    for thread in threading.enumerate():
        if thread.name == "nftables-events":
            thread.join(5)
    assert r._events is None


def test_the_watch_listens_once_nf_tables_is_loaded_not_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = [False]
    r, started = _iptables_listening(monkeypatch, loaded)
    r.listen(lambda: None, lambda: False)
    r._listen()  # what each glance does first
    assert started == []  # subscribing would have loaded the module
    loaded[0] = True
    r._listen()
    _settle(r)
    assert started == [1]


@pytest.mark.parametrize("raises", [True, False])
def test_a_listener_that_ended_is_not_started_again(
    monkeypatch: pytest.MonkeyPatch, raises: bool
) -> None:
    r, started = _iptables_listening(monkeypatch, [True], raises)
    r.listen(lambda: None, lambda: False)
    _settle(r)
    r._listen()
    r._listen()
    _settle(r)
    assert started == [1]


DONE = struct.pack("=IHHII", 20, netfilter.NLMSG_DONE, 2, 1, 0) + struct.pack("=i", 0)


def test_a_table_owned_by_a_process_is_told_from_the_dump_of_the_tables() -> None:
    """pyroute2's encoding of the kernel's NEWTABLE messages: `flags owner` (0x2) marks one
    that the kernel removes, without a commit, when its owner's socket closes."""
    plain = table("filter")
    owned = encoded(nft_table_msg(), NFT | NEWTABLE, NFTA_TABLE_NAME="fw", NFTA_TABLE_FLAGS=0x2)
    assert netfilter.parse_owned(plain + DONE) is False
    assert netfilter.parse_owned(plain + owned + DONE) is True
    assert netfilter.parse_owned(plain) is None  # the dump goes on in the next datagram
