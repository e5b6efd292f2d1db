"""rtnetlink, spoken directly: dumps of links, IPv4 addresses, routes and bridge ports, and the
few writes the bridge needs (create, set MTU/MAC/up, delete, add or remove an address, a port's
hairpin mode).

pyroute2 costs 160-250 ms to import here (its package imports NDB, IPDB, conntrack and
asyncio), more than the whole shell baseline of a converge; these messages are a few struct
formats. The watch's event listener is a bare socket too (pyroute2 held 11 MB of its memory);
pyroute2 is left to the tests, as the oracle for the message formats.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import itertools
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

NETLINK_ROUTE = 0
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # flags of an error message
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLMSGERR_ATTR_MSG = 1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR, RTM_NEWROUTE, RTM_GETROUTE = 20, 21, 22, 24, 26
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO, IFLA_INFO_KIND = 1, 3, 4, 18, 1
IFLA_MASTER, IFLA_PROTINFO, IFLA_BRPORT_MODE = 10, 12, 4  # a bridge port's master, hairpin
IFLA_LINK_NETNSID = 37  # present only when a veth's peer lives in another network namespace
NLA_F_NESTED = 0x8000
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_MULTIPATH, RTA_TABLE = 1, 4, 5, 9, 15
IFF_UP = 0x1
RT_TABLE_MAIN, RTN_UNICAST = 254, 1
RECEIVE_BUFFER = 1 << 16

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")
_ERROR = struct.Struct("=i")
_U32 = struct.Struct("=I")
_S32 = struct.Struct("=i")


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None  # "bridge", "dummy", "veth", ...; None for a plain device
    mtu: int
    mac: str | None
    up: bool
    peer_netnsid: int | None = None  # a veth's peer's namespace, when it is another one


@dataclass(frozen=True)
class BridgePort:
    index: int
    name: str
    master: int  # the bridge's index
    hairpin: bool


@dataclass(frozen=True)
class Address:
    index: int
    interface: ipaddress.IPv4Interface


@dataclass(frozen=True)
class Route:
    dst: ipaddress.IPv4Network
    gateway: str | None
    oif: int | None
    table: int
    type: int
    multipath: bool

    @property
    def on_link(self) -> bool:
        return self.gateway is None and not self.multipath


class NetlinkError(OSError):
    pass


def _malformed(why: str) -> NetlinkError:
    return NetlinkError(errno.EBADMSG, f"malformed netlink reply: {why}")


def _attributes(data: bytes, offset: int) -> dict[int, bytes]:
    """The attributes from `offset` on, by type. One whose length runs past the end (a
    truncated reply) ends the list; types dockyard does not know are there and unused."""
    attrs: dict[int, bytes] = {}
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size or offset + length > len(data):
            break
        attrs[kind & 0x3FFF] = data[offset + _RTATTR.size : offset + length]
        offset += (length + 3) & ~3
    return attrs


def _u32(attrs: dict[int, bytes], kind: int) -> int | None:
    raw = attrs.get(kind)
    return _U32.unpack(raw)[0] if raw is not None and len(raw) == _U32.size else None


def _s32(attrs: dict[int, bytes], kind: int) -> int | None:
    raw = attrs.get(kind)
    return _S32.unpack(raw)[0] if raw is not None and len(raw) == _S32.size else None


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _ipv4(attrs: dict[int, bytes], kind: int) -> ipaddress.IPv4Address | None:
    raw = attrs.get(kind)
    return ipaddress.IPv4Address(raw) if raw is not None and len(raw) == 4 else None


class Replies:
    """The kernel's answer to one request, checked as it arrives: only messages with the
    request's sequence number and for this socket's port id count; a dump ends at NLMSG_DONE,
    a request at its acknowledgement; an NLMSG_ERROR is raised with the kernel's own words
    (extended acknowledgement) when it gives them."""

    def __init__(self, seq: int, port: int) -> None:
        self.seq, self.port = seq, port
        self.done = False

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The (type, payload) of each data message in one datagram; `done` once complete."""
        out: list[tuple[int, bytes]] = []
        offset = 0
        while offset < len(data) and not self.done:
            if offset + _NLMSGHDR.size > len(data):
                raise _malformed(f"{len(data) - offset} bytes after the last message")
            length, kind, flags, seq, port = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size or offset + length > len(data):
                raise _malformed(f"a message of {length} bytes in {len(data) - offset}")
            payload = data[offset + _NLMSGHDR.size : offset + length]
            offset += (length + 3) & ~3
            if seq != self.seq or port != self.port:
                continue  # not an answer to this request
            message = self._message(kind, flags, payload)
            if message is not None:
                out.append(message)
        return out

    def _message(self, kind: int, flags: int, payload: bytes) -> tuple[int, bytes] | None:
        if kind == NLMSG_NOOP:
            return None
        if kind == NLMSG_OVERRUN:
            raise NetlinkError(errno.ENOBUFS, "netlink reply overrun: data was lost")
        if kind in (NLMSG_ERROR, NLMSG_DONE):
            self.done = True
            _raise_error(kind, flags, payload)
            return None
        if not flags & NLM_F_MULTI:
            self.done = True  # a single answer, not part of a dump
        return kind, payload


def _raise_error(kind: int, flags: int, payload: bytes) -> None:
    """An error or a dump's end: a negative errno in its first four bytes is a failure. An
    error message then holds the request's header (all of the request unless capped), and
    the extended acknowledgement's attributes when NLM_F_ACK_TLVS is set."""
    if len(payload) < _ERROR.size:
        if kind == NLMSG_ERROR:
            raise _malformed("an error message without its code")
        return
    (code,) = _ERROR.unpack_from(payload)
    if code == 0:
        return
    if code > 0 or -code > 4095:
        raise _malformed(f"error code {code}")
    tlvs = _ERROR.size
    if kind == NLMSG_ERROR:
        request_length = 0
        if len(payload) >= tlvs + _NLMSGHDR.size:
            (request_length,) = _U32.unpack_from(payload, tlvs)
        tlvs += _NLMSGHDR.size if flags & NLM_F_CAPPED else (request_length + 3) & ~3
    text = os.strerror(-code)
    if flags & NLM_F_ACK_TLVS:
        said = _attributes(payload, tlvs).get(NLMSGERR_ATTR_MSG)
        if said:
            text = f"{text}: {_text(said)}"
    raise NetlinkError(-code, text)


_sequence = itertools.count(int(time.time()) & 0xFFFFFF)


def _exchange(kind: int, flags: int, body: bytes) -> Iterator[tuple[int, bytes]]:
    """Send one request; (message type, payload) of every reply, until done or acknowledged.
    An error reply is raised as an OSError with the kernel's errno."""
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
    ) as s:
        s.bind((0, 0))
        with contextlib.suppress(OSError):  # kernels before 4.12 have no extended acks
            s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        port = s.getsockname()[0]
        seq = next(_sequence)
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0)
        s.send(header + body)
        replies = Replies(seq, port)
        while not replies.done:
            data, _, msg_flags, _ = s.recvmsg(RECEIVE_BUFFER)
            if msg_flags & socket.MSG_TRUNC:
                raise _malformed(f"a datagram larger than {RECEIVE_BUFFER} bytes")
            yield from replies.feed(data)


def _dump(kind: int, header: bytes) -> Iterator[tuple[int, bytes]]:
    """(message type, payload) for every message of one dump request."""
    return _exchange(kind, NLM_F_DUMP, header)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def links() -> list[Link]:
    return parse_links(_dump(RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)))


def parse_links(messages: Iterable[tuple[int, bytes]]) -> list[Link]:
    out = []
    for kind, payload in messages:
        if kind != RTM_NEWLINK or len(payload) < _IFINFOMSG.size:
            continue
        _, _, index, flags, _ = _IFINFOMSG.unpack_from(payload)
        attrs = _attributes(payload, _IFINFOMSG.size)
        info = _attributes(attrs.get(IFLA_LINKINFO, b""), 0)
        mac = attrs.get(IFLA_ADDRESS)
        out.append(
            Link(
                index=index,
                name=_text(attrs.get(IFLA_IFNAME, b"")),
                kind=_text(info[IFLA_INFO_KIND]) if IFLA_INFO_KIND in info else None,
                mtu=_u32(attrs, IFLA_MTU) or 0,
                mac=":".join(f"{b:02x}" for b in mac) if mac else None,
                up=bool(flags & IFF_UP),
                peer_netnsid=_s32(attrs, IFLA_LINK_NETNSID),
            )
        )
    return out


def bridge_ports() -> list[BridgePort]:
    """Every bridge port of the namespace, with its bridge and its hairpin mode."""
    return parse_bridge_ports(_dump(RTM_GETLINK, _link_of(socket.AF_BRIDGE, 0)))


def parse_bridge_ports(messages: Iterable[tuple[int, bytes]]) -> list[BridgePort]:
    out = []
    for kind, payload in messages:
        if kind != RTM_NEWLINK or len(payload) < _IFINFOMSG.size:
            continue
        family, _, index, _, _ = _IFINFOMSG.unpack_from(payload)
        attrs = _attributes(payload, _IFINFOMSG.size)
        master = _u32(attrs, IFLA_MASTER)
        if family != socket.AF_BRIDGE or master is None or master == index:
            continue  # not a port (a bridge lists itself, as its own master)
        mode = _attributes(attrs.get(IFLA_PROTINFO, b""), 0).get(IFLA_BRPORT_MODE)
        name = _text(attrs.get(IFLA_IFNAME, b""))
        out.append(BridgePort(index, name, master, bool(mode and mode[0])))
    return out


def addresses() -> list[Address]:
    return parse_addresses(_dump(RTM_GETADDR, _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)))


def parse_addresses(messages: Iterable[tuple[int, bytes]]) -> list[Address]:
    out = []
    for kind, payload in messages:
        if kind != RTM_NEWADDR or len(payload) < _IFADDRMSG.size:
            continue
        family, prefixlen, _, _, index = _IFADDRMSG.unpack_from(payload)
        if family != socket.AF_INET or prefixlen > 32:
            continue
        attrs = _attributes(payload, _IFADDRMSG.size)
        ip = _ipv4(attrs, IFA_LOCAL) or _ipv4(attrs, IFA_ADDRESS)
        if ip is not None:
            out.append(Address(index, ipaddress.IPv4Interface((ip, prefixlen))))
    return out


def routes() -> list[Route]:
    request = _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
    return parse_routes(_dump(RTM_GETROUTE, request))


def parse_routes(messages: Iterable[tuple[int, bytes]]) -> list[Route]:
    out = []
    for kind, payload in messages:
        if kind != RTM_NEWROUTE or len(payload) < _RTMSG.size:
            continue
        family, dst_len, _, _, table, _, _, rtype, _ = _RTMSG.unpack_from(payload)
        if family != socket.AF_INET or dst_len > 32:
            continue
        attrs = _attributes(payload, _RTMSG.size)
        dst = _ipv4(attrs, RTA_DST) or ipaddress.IPv4Address(0)
        gateway = _ipv4(attrs, RTA_GATEWAY)
        out.append(
            Route(
                dst=ipaddress.IPv4Network((dst, dst_len), strict=False),
                gateway=str(gateway) if gateway else None,
                oif=_u32(attrs, RTA_OIF),
                table=_or(_u32(attrs, RTA_TABLE), table),
                type=rtype,
                multipath=RTA_MULTIPATH in attrs,
            )
        )
    return out


TRANSIENT = frozenset({errno.EBUSY, errno.EAGAIN, errno.ENOBUFS, errno.EINTR})


def _attr(kind: int, data: bytes) -> bytes:
    raw = _RTATTR.pack(4 + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def _request(kind: int, flags: int, body: bytes) -> None:
    """Send one request and wait for its acknowledgement; a refusal is an OSError."""
    for _ in _exchange(kind, NLM_F_ACK | flags, body):
        pass


def _link(index: int, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


def _link_of(family: int, index: int) -> bytes:
    return _IFINFOMSG.pack(family, 0, index, 0, 0)


def create_bridge(name: str) -> None:
    """A new bridge called `name`; EEXIST (as an OSError) when a link has that name."""
    info = _attr(IFLA_INFO_KIND, b"bridge\0")
    body = _link(0) + _attr(IFLA_IFNAME, name.encode() + b"\0") + _attr(IFLA_LINKINFO, info)
    _request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)


def set_link(
    index: int, mtu: int | None = None, mac: str | None = None, up: bool | None = None
) -> None:
    attrs = b""
    if mtu is not None:
        attrs += _attr(IFLA_MTU, struct.pack("=I", mtu))
    if mac is not None:
        attrs += _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
    flags, change = (0, 0) if up is None else (IFF_UP if up else 0, IFF_UP)
    _request(RTM_NEWLINK, 0, _link(index, flags, change) + attrs)


def set_hairpin(index: int, on: bool) -> None:
    """A bridge port's hairpin mode (`bridge link set dev PORT hairpin on`): frames may leave
    by the port they came in by. The attributes are nested; without NLA_F_NESTED the kernel
    would read the byte as the port's STP state."""
    mode = _attr(IFLA_BRPORT_MODE, bytes([1 if on else 0]))
    body = _link_of(socket.AF_BRIDGE, index) + _attr(IFLA_PROTINFO | NLA_F_NESTED, mode)
    _request(RTM_SETLINK, 0, body)


def delete_link(index: int) -> None:
    _request(RTM_DELLINK, 0, _link(index))


def change_address(add: bool, index: int, interface: ipaddress.IPv4Interface) -> None:
    body = _IFADDRMSG.pack(socket.AF_INET, interface.network.prefixlen, 0, 0, index)
    packed = interface.ip.packed
    body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
    if add:
        _request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)
    else:
        _request(RTM_DELADDR, 0, body)


def retry(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Netlink calls that fail for a moment (EBUSY, EAGAIN, ENOBUFS) are tried again."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        if not _transient(e):
            raise
    import tenacity

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_transient),
        stop=tenacity.stop_after_attempt(6),
        wait=tenacity.wait_exponential(multiplier=0.02, max=1.0),
        reraise=True,
    )
    return retrying(fn, *args, **kwargs)


def _transient(e: BaseException) -> bool:
    code = getattr(e, "code", None) or getattr(e, "errno", None)
    return code in TRANSIENT
