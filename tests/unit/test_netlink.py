"""dockyard's rtnetlink replies, checked without a kernel: messages built by pyroute2 (the
oracle for the message formats), and mutated ones."""

from __future__ import annotations

import errno
import ipaddress
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroute2.netlink import NLM_F_MULTI, NLMSG_DONE
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from dockyard.state import netlink
from dockyard.state.netlink import NetlinkError, Replies

SEQ, PORT = 4242, 31337


def encoded(
    msg: Any, kind: int, seq: int = SEQ, port: int = PORT, flags: int = NLM_F_MULTI
) -> bytes:
    msg["header"]["type"] = kind
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = port
    msg.encode()
    return bytes(msg.data)


def done(seq: int = SEQ, port: int = PORT) -> bytes:
    """A dump's end: a header and a zero error code."""
    return struct.pack("=IHHIIi", 20, NLMSG_DONE, NLM_F_MULTI, seq, port, 0)


def link_message(index: int, name: str, mtu: int, mac: bytes, up: bool, kind: str | None) -> bytes:
    msg = ifinfmsg()
    msg["family"] = 0
    msg["index"] = index
    msg["flags"] = 1 if up else 0
    attrs: list[Any] = [("IFLA_IFNAME", name), ("IFLA_MTU", mtu)]
    if mac:
        attrs.append(("IFLA_ADDRESS", ":".join(f"{b:02x}" for b in mac)))
    if kind:
        attrs.append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", kind)]}))
    msg["attrs"] = attrs
    return encoded(msg, netlink.RTM_NEWLINK)


def address_message(index: int, address: str, prefixlen: int) -> bytes:
    msg = ifaddrmsg()
    msg["family"] = 2
    msg["prefixlen"] = prefixlen
    msg["index"] = index
    msg["attrs"] = [("IFA_LOCAL", address), ("IFA_ADDRESS", address), ("IFA_LABEL", "x")]
    return encoded(msg, netlink.RTM_NEWADDR)


def route_message(dst: str, dst_len: int, gateway: str | None, oif: int) -> bytes:
    msg = rtmsg()
    msg["family"] = 2
    msg["dst_len"] = dst_len
    msg["table"] = 254
    msg["type"] = 1
    attrs: list[Any] = [("RTA_TABLE", 254), ("RTA_OIF", oif), ("RTA_PRIORITY", 100)]
    if dst_len:
        attrs.append(("RTA_DST", dst))
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    msg["attrs"] = attrs
    return encoded(msg, netlink.RTM_NEWROUTE)


def read(*datagrams: bytes) -> list[tuple[int, bytes]]:
    replies = Replies(SEQ, PORT)
    out = []
    for data in datagrams:
        out += replies.feed(data)
    assert replies.done
    return out


names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=15)


@settings(max_examples=200, deadline=None)
@given(
    links=st.lists(
        st.tuples(
            st.integers(1, 2**31 - 1),
            names,
            st.integers(68, 65535),
            st.binary(min_size=6, max_size=6),
            st.booleans(),
            st.sampled_from([None, "bridge", "dummy", "veth"]),
        ),
        max_size=6,
    ),
    split=st.integers(0, 6),
)
def test_links_as_pyroute2_encodes_them(links: list[Any], split: int) -> None:
    messages = [link_message(*link) for link in links]
    # a dump arrives in several datagrams: done only at NLMSG_DONE
    first, second = b"".join(messages[:split]), b"".join(messages[split:]) + done()
    parsed = netlink.parse_links(read(first, second))
    assert [(x.index, x.name, x.mtu, x.mac, x.up, x.kind) for x in parsed] == [
        (index, name, mtu, ":".join(f"{b:02x}" for b in mac), up, kind)
        for index, name, mtu, mac, up, kind in links
    ]


@pytest.mark.parametrize("netnsid", [None, 0, 7])
def test_a_veths_peer_namespace_as_pyroute2_encodes_it(netnsid: int | None) -> None:
    msg = ifinfmsg()
    msg["family"] = 0
    msg["index"] = 9
    attrs: list[Any] = [("IFLA_IFNAME", "veth1a"), ("IFLA_MTU", 1500)]
    attrs.append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth")]}))
    if netnsid is not None:
        attrs.append(("IFLA_LINK_NETNSID", netnsid))
    msg["attrs"] = attrs
    [link] = netlink.parse_links(read(encoded(msg, netlink.RTM_NEWLINK) + done()))
    assert (link.kind, link.peer_netnsid) == ("veth", netnsid)


def test_addresses_and_routes_as_pyroute2_encodes_them() -> None:
    addresses = netlink.parse_addresses(read(address_message(3, "172.17.42.1", 16) + done()))
    assert addresses == [netlink.Address(3, ipaddress.IPv4Interface("172.17.42.1/16"))]
    dump = route_message("10.5.0.0", 24, None, 4) + route_message("", 0, "192.0.2.1", 2) + done()
    routes = netlink.parse_routes(read(dump))
    assert [(str(r.dst), r.gateway, r.oif, r.table, r.on_link) for r in routes] == [
        ("10.5.0.0/24", None, 4, 254, True),
        ("0.0.0.0/0", "192.0.2.1", 2, 254, False),
    ]


def test_messages_of_another_request_or_socket_are_not_taken() -> None:
    stray_seq = link_message(1, "lo", 65536, b"", True, None)
    other = link_message(7, "eth0", 1500, b"\x02" * 6, True, None)
    mine = link_message(2, "docker0", 1500, b"\x02" * 6, True, "bridge")
    replies = Replies(SEQ, PORT)
    taken = replies.feed(
        _with(stray_seq, seq=SEQ - 1) + _with(other, port=PORT + 1) + mine + done(seq=SEQ - 1)
    )
    assert not replies.done  # the other request's NLMSG_DONE does not end this one
    taken += replies.feed(done())
    assert [x.name for x in netlink.parse_links(taken)] == ["docker0"]


def _with(message: bytes, seq: int = SEQ, port: int = PORT) -> bytes:
    length, kind, flags, _, _ = struct.unpack_from("=IHHII", message)
    return struct.pack("=IHHII", length, kind, flags, seq, port) + message[16:]


def kernel_error(code: int, text: str | None, capped: bool = True) -> bytes:
    """An NLMSG_ERROR as the kernel lays it out (include/uapi/linux/netlink.h): the error,
    the request's header (the whole request unless capped), then the extended-ack TLVs."""
    request = struct.pack("=IHHII", 32, netlink.RTM_NEWLINK, 5, SEQ, 0) + b"\0" * 16
    payload = struct.pack("=i", code) + (request[:16] if capped else request)
    flags = netlink.NLM_F_CAPPED if capped else 0
    if text is not None:
        raw = text.encode() + b"\0"
        tlv = struct.pack("=HH", 4 + len(raw), netlink.NLMSGERR_ATTR_MSG) + raw
        payload += tlv + b"\0" * (-len(tlv) % 4)
        flags |= netlink.NLM_F_ACK_TLVS
    return struct.pack("=IHHII", 16 + len(payload), netlink.NLMSG_ERROR, flags, SEQ, PORT) + payload


@pytest.mark.parametrize("capped", [True, False])
def test_an_error_carries_the_kernel_s_words(capped: bool) -> None:
    with pytest.raises(NetlinkError) as e:
        Replies(SEQ, PORT).feed(kernel_error(-22, "mtu less than device minimum", capped))
    assert e.value.errno == errno.EINVAL
    assert str(e.value) == "[Errno 22] Invalid argument: mtu less than device minimum"


def test_an_error_without_extended_ack_is_the_errno() -> None:
    with pytest.raises(NetlinkError) as e:
        Replies(SEQ, PORT).feed(kernel_error(-17, None))
    assert (e.value.errno, e.value.strerror) == (errno.EEXIST, "File exists")


def test_an_acknowledgement_ends_a_request() -> None:
    replies = Replies(SEQ, PORT)
    assert replies.feed(kernel_error(0, None)) == []
    assert replies.done


def test_a_dump_that_ends_in_an_error_raises_it() -> None:
    end = struct.pack("=IHHII", 20, NLMSG_DONE, NLM_F_MULTI, SEQ, PORT) + struct.pack("=i", -16)
    with pytest.raises(NetlinkError) as e:
        read(link_message(1, "lo", 65536, b"", True, None) + end)
    assert e.value.errno == errno.EBUSY


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x10\x00\x00", "malformed netlink reply: 3 bytes after the last message"),
        (
            struct.pack("=IHHII", 64, 16, 2, SEQ, PORT),
            "malformed netlink reply: a message of 64 bytes in 16",
        ),
        (
            struct.pack("=IHHII", 8, 16, 2, SEQ, PORT),
            "malformed netlink reply: a message of 8 bytes in 16",
        ),
        (
            struct.pack("=IHHII", 18, netlink.NLMSG_ERROR, 0, SEQ, PORT) + b"\0\0",
            "malformed netlink reply: an error message without its code",
        ),
    ],
    ids=["short header", "longer than the datagram", "shorter than a header", "error without code"],
)
def test_malformed_replies_are_errors(data: bytes, message: str) -> None:
    with pytest.raises(NetlinkError) as e:
        Replies(SEQ, PORT).feed(data)
    assert (e.value.errno, e.value.strerror) == (errno.EBADMSG, message)


def test_truncated_and_unknown_attributes_are_skipped() -> None:
    message = bytearray(link_message(5, "br0", 1500, b"\x02\x42\xac\x11\x00\x01", True, None))
    # an attribute of a type nobody knows, then one whose length runs past the message
    extra = struct.pack("=HH", 8, 999) + b"abcd" + struct.pack("=HHI", 64, netlink.IFLA_MTU, 1)
    message += extra
    struct.pack_into("=I", message, 0, len(message))
    [link] = netlink.parse_links(read(bytes(message) + done()))
    assert (link.name, link.mtu, link.mac) == ("br0", 1500, "02:42:ac:11:00:01")


def test_attributes_of_the_wrong_size_are_not_read() -> None:
    message = bytearray(link_message(5, "br0", 1500, b"", True, None))
    at = message.find(struct.pack("=HH", 8, netlink.IFLA_MTU))
    struct.pack_into("=HH", message, at, 6, netlink.IFLA_MTU)  # an MTU of two bytes
    [link] = netlink.parse_links(read(bytes(message) + done()))
    assert link.mtu == 0


@settings(max_examples=300, deadline=None)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=8),
    cut=st.integers(0, 10_000),
)
def test_mutated_replies_never_crash(flips: list[tuple[int, int]], cut: int) -> None:
    """Flipped bytes and truncation anywhere: a parse, or a NetlinkError; nothing else."""
    dump = bytearray(
        link_message(2, "docker0", 1500, b"\x02\x42\xac\x11\x00\x01", True, "bridge")
        + address_message(2, "172.17.42.1", 16)
        + route_message("172.17.0.0", 16, None, 2)
        + done()
    )
    for at, mask in flips:
        dump[at % len(dump)] ^= mask
    data = bytes(dump[: max(cut % (len(dump) + 1), 1)])
    try:
        messages = Replies(SEQ, PORT).feed(data)
    except NetlinkError:
        return
    netlink.parse_links(messages)
    netlink.parse_addresses(messages)
    netlink.parse_routes(messages)
