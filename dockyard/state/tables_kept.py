"""The last whole read of the iptables tables in nf_tables, kept across runs for as long as
the ruleset generation shows that nothing was committed since.

Reading is what costs on nf_tables: at 100,000 published ports `iptables-nft-save` takes
23-29 s here (the kernel lists 100,000 rules of a chain in 13 s; `nft list chain` takes as
long), where writing a chain of them again takes 2.6 s. nf_tables counts its commits: every
commit in a network namespace, of any table and family, moves that namespace's generation
(`NFT_MSG_GETGEN`), so a ruleset at the same generation is the same ruleset. A read is kept
under a key of its generation, the namespace (its cookie, `SO_NETNS_COOKIE`, never reused
while the machine is up), the boot, and what printed it (`_tool`: an upgrade or another
/etc/protocols may print otherwise); a run whose key is the same takes the kept text instead
of reading. The caller keeps only a read that stands for its generation (backends._keep) and
only one of FROM bytes or more: a small read costs less than keeping it.

The file lives in the cache directory (`cachedir`), 0600 in a 0700 directory, written
atomically; a file that is not exactly that, or not whole, is a miss.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
from collections.abc import Callable
from pathlib import Path

from dockyard import background
from dockyard.state import bootfacts, cachedir, safepath

FROM = 1 << 20  # about 3,700 published ports, which iptables-nft-save reads in about 0.1 s
NAME = cachedir.TABLES_NFT
_MAGIC = b"dockyard-nft-tables-1\n"
_LIMIT = 1 << 30
SO_NETNS_COOKIE = 71  # linux/socket.h; Linux 5.14 and later


def netns_cookie() -> int | None:
    """This network namespace's cookie: unique among all namespaces since boot."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            value = s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
    except OSError:
        return None
    return int(struct.unpack("=Q", value)[0])


# Where libxtables and the extensions that print each match and target live (Debian's and
# others' layouts; XTABLES_LIBDIR when set): one upgraded alone may print otherwise.
_LIBRARIES = (
    "usr/lib/*/xtables",
    "usr/lib*/xtables",
    "usr/lib/*/libxtables.so.*",
    "usr/lib*/libxtables.so.*",
)


# What the extensions read to name numbers (`-p 47` is printed `-p gre` through
# /etc/protocols, as the name service says; connlabels, device groups and realms by name):
# another may print another text for the same rules.
_NAMING = (
    "/etc/protocols",
    "/etc/nsswitch.conf",
    "/etc/xtables/connlabel.conf",
    "/etc/iproute2/group",
    "/etc/iproute2/rt_realms",
)


def _tool() -> str | None:
    """Who prints the read: `iptables-nft-save`'s file, libxtables' and the extensions', and
    the files they name numbers by."""
    found = shutil.which("iptables-nft-save")
    if found is None:
        return None
    places = {Path(found).resolve()}
    for pattern in _LIBRARIES:
        places.update(Path("/").glob(pattern))
    configured = os.environ.get("XTABLES_LIBDIR")
    if configured:
        places.add(Path(configured))
    try:
        stamps = [_stamp(place) for place in sorted(places)]
        stamps += [_stamp(Path(name), missing="-") for name in _NAMING]
    except OSError:
        return None
    return ",".join(stamps)


def _stamp(place: Path, missing: str | None = None) -> str:
    """A file as found now; `missing` for one that is not there, when that may be."""
    try:
        st = place.stat()
    except FileNotFoundError:
        if missing is None:
            raise
        return missing
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def key(generation: object) -> bytes | None:
    """What a kept read must have been taken under to stand for a read now, at `generation`
    (the tables' token: None when it could not be told, and nothing is kept)."""
    if not isinstance(generation, int) or isinstance(generation, bool):
        return None
    boot, cookie, tool = bootfacts.boot_id(), netns_cookie(), _tool()
    if not boot or cookie is None or tool is None:
        return None
    return f"{boot} {cookie} {generation} {tool}\n".encode()


def get(generation: object, encoding_errors: str) -> str | None:
    """The text kept for this generation here, or None."""
    wanted = key(generation)
    where = cachedir.directory()
    if wanted is None or where is None:
        return None
    tree = safepath.Tree(where)
    try:
        entry = tree.stat(NAME)
        if not cachedir.private(tree.stat(""), "directory") or not cachedir.private(entry, "file"):
            return None
        data = tree.read(NAME, limit=_LIMIT)
    except (OSError, ValueError, safepath.Unsafe, safepath.TooLarge):
        return None
    head = len(_MAGIC) + len(wanted)
    if data is None or data[:head] != _MAGIC + wanted:
        return None
    size, newline, _ = data[head : head + 24].partition(b"\n")
    start = head + len(size) + len(newline)
    if not newline or not size.isdigit() or int(size) != len(data) - start:
        return None  # not whole
    return data[start:].decode(errors=encoding_errors)


_keeping = [True]


def stop_keeping() -> None:
    """A watch keeps nothing (it has its own shortcut, watch.py): making a kept file of 100,000
    ports' rules takes about 100 MB on a thread, which glibc keeps for the process after."""
    _keeping[0] = False


def put(generation: object, text: str | Callable[[], str | None], encoding_errors: str) -> None:
    """Keep `text`, the tables at `generation` (or what makes it: made on that thread), on
    another thread once the run waits (`background`): failing to keep it changes nothing but
    the next run's speed."""
    if not _keeping[0] or (isinstance(text, str) and len(text) < FROM):
        return
    written = key(generation)
    where = cachedir.directory()
    if written is None or where is None:
        return

    def work() -> None:
        made = text if isinstance(text, str) else text()
        if made is None or len(made) < FROM:
            return
        body = made.encode(errors=encoding_errors)
        data = b"%s%s%d\n%s" % (_MAGIC, written, len(body), body)
        with contextlib.suppress(OSError, ValueError, safepath.Unsafe):
            if not where.exists():
                where.mkdir(mode=0o700, parents=True)
            tree = safepath.Tree(where)
            if cachedir.private(tree.stat(""), "directory"):
                tree.write(NAME, data, 0o600)

    background.later(work, "keeping the tables read")
