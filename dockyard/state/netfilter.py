"""Cheap looks at the firewall, for a watch that must not read 200,000 rules every pass.

- nf_tables counts its commits: the ruleset generation (`NFT_MSG_GETGEN` over nfnetlink)
  changes with every change to any table, and each commit is announced on the
  `NFNLGRP_NFTABLES` group, object by object (table, chain), then closed by `NFT_MSG_NEWGEN`
  with the new generation.
- Legacy xtables has neither: `IPT_SO_GET_INFO` gives each table's hooks, entry count and size,
  which an edit that keeps the size (a port number changed in place) leaves as they were.

All of it is per network namespace, like the tables. The parsers are pure, and take bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

# linux/netlink.h, linux/netfilter/nfnetlink.h, linux/netfilter/nf_tables.h
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NFNLGRP_NFTABLES = 7
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWCHAIN = 3
NFT_MSG_GETCHAIN = 4
NFT_MSG_NEWTABLE = 0
NFT_MSG_GETTABLE = 1
NFT_MSG_NEWGEN = 15
NFT_MSG_GETGEN = 16
NLM_F_DUMP = 0x300
NFTA_TABLE_FLAGS = 2
NFTA_TABLE_OWNER = 7
NFT_TABLE_F_OWNER = 0x2
NFTA_GEN_ID = 1
NFTA_CHAIN_NAME = 3
NLA_TYPE_MASK = 0x3FFF
# Messages about one chain, and the attribute that names it (attribute 1 names the table in
# every object message).
_CHAIN_ATTR = {
    3: 3,  # NFT_MSG_NEWCHAIN: NFTA_CHAIN_NAME
    5: 3,  # NFT_MSG_DELCHAIN
    27: 3,  # NFT_MSG_DESTROYCHAIN
    6: 2,  # NFT_MSG_NEWRULE: NFTA_RULE_CHAIN
    8: 2,  # NFT_MSG_DELRULE
    28: 2,  # NFT_MSG_DESTROYRULE
}
_TABLE_ATTR = 1
AF_INET = 2

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version, res_id (big-endian: see res_id)
_ATTR = struct.Struct("=HH")  # nlattr: len, type


class Touched(NamedTuple):
    """What one announced change was about: a chain, or (chain None) a whole table; family
    and table None: something this module cannot place, so anything."""

    family: int | None
    table: str | None
    chain: str | None = None


EVERYTHING = Touched(None, None)


def messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each netlink message in `data`; a truncated one ends the walk."""
    at = 0
    while at + _HEADER.size <= len(data):
        length, kind, _, _, _ = _HEADER.unpack_from(data, at)
        if length < _HEADER.size or at + length > len(data):
            return
        yield kind, data[at + _HEADER.size : at + length]
        at += (length + 3) & ~3


def attributes(payload: bytes) -> dict[int, bytes]:
    """The top-level attributes of an nfnetlink payload (after its nfgenmsg), by type."""
    out: dict[int, bytes] = {}
    at = _NFGEN.size
    while at + _ATTR.size <= len(payload):
        length, kind = _ATTR.unpack_from(payload, at)
        if length < _ATTR.size or at + length > len(payload):
            break
        out[kind & NLA_TYPE_MASK] = payload[at + _ATTR.size : at + length]
        at += (length + 3) & ~3
    return out


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.split(b"\0", 1)[0].decode(errors="replace")


def generation_of(payload: bytes) -> int | None:
    """The generation an `NFT_MSG_NEWGEN` payload carries."""
    value = attributes(payload).get(NFTA_GEN_ID)
    return struct.unpack("!I", value)[0] if value is not None and len(value) == 4 else None


def res_id(payload: bytes) -> int:
    """The generation (its low 16 bits) an nf_tables announcement belongs to: the kernel puts
    it in the nfgenmsg's res_id. -1 when the payload is too short to say."""
    return struct.unpack_from("!H", payload, 2)[0] if len(payload) >= _NFGEN.size else -1


def _later(a: int, b: int) -> bool:
    """16-bit generation `a` comes after `b` (serial number arithmetic)."""
    return 0 < (a - b) & 0xFFFF < 0x8000


def touched(kind: int, payload: bytes) -> Touched:
    """What an nftables event message is about."""
    if kind >> 8 != NFNL_SUBSYS_NFTABLES or len(payload) < _NFGEN.size:
        return EVERYTHING
    family = payload[0]
    attrs = attributes(payload)
    table = _text(attrs.get(_TABLE_ATTR))
    if table is None:
        return EVERYTHING
    chain_attr = _CHAIN_ATTR.get(kind & 0xFF)
    chain = _text(attrs.get(chain_attr)) if chain_attr is not None else None
    return Touched(family, table, chain)


def _request(kind: int, seq: int, family: int = socket.AF_UNSPEC, attrs: bytes = b"") -> bytes:
    body = _NFGEN.pack(family, 0, 0) + attrs
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST, seq, 0) + body


def _attr(kind: int, text: str) -> bytes:
    data = text.encode() + b"\0"
    padding = b"\0" * (-(_ATTR.size + len(data)) % 4)
    return _ATTR.pack(_ATTR.size + len(data), kind) + data + padding


def chain_request(table: str, chain: str, seq: int = 1) -> bytes:
    """`NFT_MSG_GETCHAIN` for one IPv4 chain."""
    attrs = _attr(_TABLE_ATTR, table) + _attr(NFTA_CHAIN_NAME, chain)
    return _request((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN, seq, AF_INET, attrs)


def parse_chain_answer(data: bytes) -> bool:
    """Whether the kernel's answer to `chain_request` found the chain: a chain message, or
    ENOENT (for the chain or its table); any other refusal is an error."""
    for kind, payload in messages(data):
        if kind == NLMSG_ERROR:
            code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
            if code == errno.ENOENT:
                return False
            raise OSError(code, os.strerror(code) if code else "netlink error")
        if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN:
            return True
    raise OSError(0, "no chain and no error in the kernel's answer")


def nft_chain_exists(table: str, chain: str) -> bool:
    """Whether nf_tables has this IPv4 chain. iptables-nft 1.8.9 says a chain that does not
    exist is "incompatible", as it says of one it cannot read: this tells the two apart."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        s.settimeout(2.0)
        s.bind((0, 0))
        s.send(chain_request(table, chain))
        return parse_chain_answer(s.recv(65536))


def parse_generation(data: bytes) -> int:
    """The generation in the kernel's answer to `NFT_MSG_GETGEN`."""
    for kind, payload in messages(data):
        if kind == NLMSG_ERROR:
            code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
            raise OSError(code, os.strerror(code) if code else "netlink error")
        if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN:
            found = generation_of(payload)
            if found is not None:
                return found
    raise OSError(0, "no generation in the kernel's answer")


def parse_owned(data: bytes) -> bool | None:
    """Whether the kernel's answer to a dump of the tables names one that a process owns
    (`flags owner`): the kernel removes such a table when that process's socket closes,
    without a commit and without moving the generation. None: the dump is not over yet."""
    for kind, payload in messages(data):
        if kind == NLMSG_ERROR:
            code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
            if code:
                raise OSError(code, os.strerror(code))
        elif kind == NLMSG_DONE:
            return False
        elif kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE:
            found = attributes(payload)
            flags = found.get(NFTA_TABLE_FLAGS, b"\0\0\0\0")
            owned = len(flags) == 4 and struct.unpack(">I", flags)[0] & NFT_TABLE_F_OWNER
            if owned or NFTA_TABLE_OWNER in found:
                return True
    return None


def nft_owned_table() -> bool:
    """Whether any nf_tables table of this namespace, of any family, is owned by a process
    (`parse_owned`). As `nft_generation`, only once nf_tables is loaded."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        s.settimeout(2.0)
        s.bind((0, 0))
        kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE
        request = _request(kind, 1)
        s.send(request[:6] + struct.pack("=H", NLM_F_REQUEST | NLM_F_DUMP) + request[8:])
        while (owned := parse_owned(s.recv(65536))) is None:
            pass
        return owned


def nft_generation() -> int:
    """This namespace's nf_tables ruleset generation. The caller makes sure nf_tables is
    loaded: asking nfnetlink about a subsystem it does not have loads its module."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        s.settimeout(2.0)
        s.bind((0, 0))
        s.send(_request((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, 1))
        return parse_generation(s.recv(65536))


class Events:
    """nf_tables' change announcements, kept generation by generation, read on a thread.

    `since(a, b)` says what the commits after generation `a` up to `b` touched, or None when it
    cannot be sure: a generation whose announcement was not seen, or one that may have lost
    messages (`lost`)."""

    KEEP = 4096  # generations remembered

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._done: dict[int, frozenset[Touched]] = {}
        # What the commits not yet closed touched, by the generation each message names (its
        # nfgenmsg res_id: the low 16 bits of the generation it belongs to). A message never
        # counts for another commit: an overflow can drop a commit's NEWGEN and keep some of
        # its messages, which must not be taken for the next commit's.
        self._open: dict[int, set[Touched]] = {}
        self._floor = -1  # generations up to this one may have lost messages

    def take(self, kind: int, payload: bytes) -> bool:
        """One message; True when it closed a commit."""
        with self._lock:
            if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN:
                generation = generation_of(payload)
                if generation is not None:
                    found = self._open.pop(generation & 0xFFFF, set()) | self._open.pop(-1, set())
                    if generation > self._floor:
                        self._done[generation] = frozenset(found)
                        while len(self._done) > self.KEEP:
                            del self._done[next(iter(self._done))]
                    # Messages of earlier commits still open lost their NEWGEN: those commits
                    # are not in `_done`, so `since` cannot vouch for them anyway.
                    self._open = {
                        g: t for g, t in self._open.items() if _later(g, generation & 0xFFFF)
                    }
                self._lock.notify_all()
                return True
            of = res_id(payload)
            if of >= 0 and self._floor >= 0 and not _later(of, self._floor & 0xFFFF):
                return False  # a commit the loss already made untrusted
            self._open.setdefault(of, set()).add(touched(kind, payload))
            return False

    def lost(self, now: int) -> None:
        """Messages were dropped (ENOBUFS). `now` is the generation when that was found: a
        dropped message belongs to a commit no later than it (nf_tables counts a commit before
        it announces it), and a later commit's messages all come after the socket had room
        again (or another ENOBUFS says otherwise). Those commits up to `now` are forgotten:
        `since` cannot vouch for them."""
        with self._lock:
            self._open = {}
            self._floor = max(self._floor, now)
            for generation in [g for g in self._done if g <= self._floor]:
                del self._done[generation]

    def since(self, start: int, end: int, wait: float = 0.0) -> frozenset[Touched] | None:
        """The union of what generations start+1 .. end touched; waits up to `wait` seconds for
        the reading thread to see `end` announced."""
        if end < start:
            return None
        with self._lock:
            self._lock.wait_for(lambda: end in self._done or end == start, timeout=wait)
            out: set[Touched] = set()
            for generation in range(start + 1, end + 1):
                found = self._done.get(generation)
                if found is None:
                    return None
                out |= found
            return frozenset(out)


def listen(events: Events, wake: Callable[[], None], stopping: Callable[[], bool]) -> None:
    """Read the namespace's nftables announcements into `events` until `stopping()`; `wake()`
    at the end of each commit and on lost messages. Runs on its own (daemon) thread; the
    caller makes sure nf_tables is loaded (subscribing to its group would load it). Returns
    (or raises OSError) when it cannot go on: the caller then stops using `events`."""
    with _subscribed() as s:
        while not stopping():
            try:
                data = s.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError as e:
                wake()
                if e.errno != errno.ENOBUFS:
                    return
                events.lost(nft_generation())  # the socket overflowed
                continue
            if any([events.take(kind, payload) for kind, payload in messages(data)]):
                wake()


@contextlib.contextmanager
def _subscribed() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((0, 0))
        s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)
        s.settimeout(1.0)
        yield s
    finally:
        s.close()


# linux/netfilter_ipv4/ip_tables.h
IPT_SO_GET_INFO = 64
_GETINFO = struct.Struct("=32sI5I5III")  # name, valid_hooks, hook_entry, underflow, num, size


class TableInfo(NamedTuple):
    """A legacy table as `IPT_SO_GET_INFO` describes it: equal before and after any change
    that adds or removes a rule, not after one that keeps the table's size."""

    valid_hooks: int
    hook_entry: tuple[int, ...]
    underflow: tuple[int, ...]
    num_entries: int
    size: int


def parse_table_info(data: bytes) -> TableInfo:
    _, hooks, *rest = _GETINFO.unpack(data)
    return TableInfo(hooks, tuple(rest[0:5]), tuple(rest[5:10]), rest[10], rest[11])


def legacy_tables(proc: Path = Path("/proc")) -> tuple[str, ...] | None:
    """The legacy tables this namespace has (`/proc/net/ip_tables_names`); None without the
    ip_tables module. Asking for one that is not there would load its module and create it."""
    try:
        return tuple(sorted((proc / "net/ip_tables_names").read_text().split()))
    except FileNotFoundError:
        return None


_libc: ctypes.CDLL | None = None


def legacy_table_info(table: str) -> TableInfo:
    """`IPT_SO_GET_INFO` for one existing table. Python's getsockopt cannot pass the table's
    name in, so libc's is called."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(table.encode(), _GETINFO.size)
    length = ctypes.c_uint(_GETINFO.size)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
        if _libc.getsockopt(
            s.fileno(), socket.IPPROTO_IP, IPT_SO_GET_INFO, buf, ctypes.byref(length)
        ):
            code = ctypes.get_errno()
            raise OSError(code, f"IPT_SO_GET_INFO {table}: {os.strerror(code)}")
    return parse_table_info(buf.raw)
