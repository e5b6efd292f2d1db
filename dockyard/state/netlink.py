"""rtnetlink, spoken directly: dumps of links, IPv4 addresses and routes, and the few writes
the bridge needs (create, set MTU/MAC/up, delete, add or remove an address).

pyroute2 costs 160-250 ms to import here (its package imports NDB, IPDB, conntrack and
asyncio), more than the whole shell baseline of a converge; these messages are a few struct
formats. pyroute2 stays where its import is paid once: the watch's event listener.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR, RTM_GETROUTE = 20, 21, 22, 26
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO, IFLA_INFO_KIND = 1, 3, 4, 18, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_MULTIPATH, RTA_TABLE = 1, 4, 5, 9, 15
IFF_UP = 0x1
RT_TABLE_MAIN, RTN_UNICAST = 254, 1

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None  # "bridge", "dummy", "veth", ...; None for a plain device
    mtu: int
    mac: str | None
    up: bool


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


def _attributes(data: bytes, offset: int) -> dict[int, bytes]:
    attrs: dict[int, bytes] = {}
    while offset + 4 <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < 4:
            break
        attrs[kind & 0x3FFF] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return attrs


def _exchange(kind: int, flags: int, body: bytes) -> Iterator[tuple[int, bytes]]:
    """Send one request; (message type, payload) of every reply, until done or acknowledged.
    An error reply is raised as an OSError with the kernel's errno."""
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
    ) as s:
        s.bind((0, 0))
        s.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | flags, 1, 0) + body)
        while True:
            data = s.recv(1 << 16)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, msg_type, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
                payload = data[offset + _NLMSGHDR.size : offset + length]
                offset += (length + 3) & ~3
                if msg_type == NLMSG_DONE:
                    return
                if msg_type == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code:
                        raise NetlinkError(-code, os.strerror(-code))
                    return  # the acknowledgement of a request
                yield msg_type, payload


def _dump(kind: int, header: bytes) -> Iterator[tuple[int, bytes]]:
    """(message type, payload) for every message of one dump request."""
    return _exchange(kind, NLM_F_DUMP, header)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode()


def links() -> list[Link]:
    out = []
    for _, payload in _dump(RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        _, _, index, flags, _ = _IFINFOMSG.unpack_from(payload)
        attrs = _attributes(payload, _IFINFOMSG.size)
        info = _attributes(attrs.get(IFLA_LINKINFO, b""), 0)
        mac = attrs.get(IFLA_ADDRESS)
        out.append(
            Link(
                index=index,
                name=_text(attrs.get(IFLA_IFNAME, b"")),
                kind=_text(info[IFLA_INFO_KIND]) if IFLA_INFO_KIND in info else None,
                mtu=struct.unpack("=I", attrs[IFLA_MTU])[0] if IFLA_MTU in attrs else 0,
                mac=":".join(f"{b:02x}" for b in mac) if mac else None,
                up=bool(flags & IFF_UP),
            )
        )
    return out


def addresses() -> list[Address]:
    out = []
    for _, payload in _dump(RTM_GETADDR, _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)):
        family, prefixlen, _, _, index = _IFADDRMSG.unpack_from(payload)
        if family != socket.AF_INET:
            continue
        attrs = _attributes(payload, _IFADDRMSG.size)
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        if raw:
            ip = ipaddress.IPv4Address(raw)
            out.append(Address(index, ipaddress.IPv4Interface((ip, prefixlen))))
    return out


def routes() -> list[Route]:
    out = []
    for _, payload in _dump(RTM_GETROUTE, _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)):
        family, dst_len, _, _, table, _, _, rtype, _ = _RTMSG.unpack_from(payload)
        if family != socket.AF_INET:
            continue
        attrs = _attributes(payload, _RTMSG.size)
        dst = (
            ipaddress.IPv4Address(attrs[RTA_DST]) if RTA_DST in attrs else ipaddress.IPv4Address(0)
        )
        gateway = attrs.get(RTA_GATEWAY)
        out.append(
            Route(
                dst=ipaddress.IPv4Network((dst, dst_len), strict=False),
                gateway=str(ipaddress.IPv4Address(gateway)) if gateway else None,
                oif=struct.unpack("=I", attrs[RTA_OIF])[0] if RTA_OIF in attrs else None,
                table=struct.unpack("=I", attrs[RTA_TABLE])[0] if RTA_TABLE in attrs else table,
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
