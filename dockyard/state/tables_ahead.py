"""The tables read ahead: each installed backend's `iptables-*-save` started at the very
start of a run, on another core, while dockyard's own modules are imported and the spec is
read (at 100,000 published ports both take about half a second). This module is light (no
spec, no pydantic), so that the read starts before they are imported;
`dockyard.reconcilers.iptables.backends.save` decides whether its result may be used.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from dockyard.state import cachedir, netfilter
from dockyard.state.scratch import scratch
from dockyard.state.scratch import text as scratch_text

BACKENDS = ("legacy", "nft")
# How the tools' bytes become text and back: a byte that is not UTF-8 (in a comment a person
# wrote into a rule) stays that byte, so that the rule can be named to delete it.
RULE_BYTES = "surrogateescape"


def available(backend: str) -> bool:
    return shutil.which(f"iptables-{backend}-save") is not None


def token(backend: str) -> object:
    """What moves whenever the backend's tables change: each legacy table's `IPT_SO_GET_INFO`
    (None without the ip_tables module; an edit that keeps a table's size keeps it too), or the
    nf_tables generation (None while nf_tables is not loaded: asking would load it)."""
    if backend == "legacy":
        names = netfilter.legacy_tables()
        return None if names is None else tuple((n, netfilter.legacy_table_info(n)) for n in names)
    return None if might_load_module("nf_tables") else netfilter.nft_generation()


UNKNOWN = "unknown"  # a token that could not be taken: never equal to one that was


def token_or_unknown(backend: str) -> object:
    try:
        return token(backend)
    except OSError:
        return UNKNOWN


def owned_table(backend: str, token: object) -> bool:
    """Whether nf_tables has a table owned by a process (`netfilter.nft_owned_table`), asked
    only when `token` is a generation (nf_tables loaded); True when that cannot be told. A read
    begun when none was stands for its generation for as long as that stays: the kernel
    removes an owned table without a commit, but making one is a commit."""
    if backend != "nft" or not isinstance(token, int):
        return True
    try:
        return netfilter.nft_owned_table()
    except OSError:
        return True


class _Early:
    """A save running in the background, its output going to an unnamed file. A plain class:
    the dataclasses module (with inspect, which it imports) costs 9 ms, here before the read
    starts."""

    def __init__(
        self,
        began: float,
        began_ns: int,
        proc: subprocess.Popen[bytes],
        out: IO[bytes],
        token: object = UNKNOWN,
        owned: bool = True,
    ) -> None:
        self.began = began  # time.time()
        self.began_ns = began_ns  # time.monotonic_ns()
        self.proc = proc
        self.out = out
        self.token = token  # the tables' token just before it began (`token`)
        self.owned = owned  # whether nf_tables had a table owned by a process then (or unknown)

    def result(self) -> str | None:
        if self.proc.wait() != 0:
            return None
        return scratch_text(self.out, RULE_BYTES)


_ahead: dict[str, _Early] = {}


def take(backend: str) -> _Early | None:
    """The read started ahead for `backend`, if any, now the caller's (it is not stopped)."""
    return _ahead.pop(backend, None)


# A read kept from an earlier run (tables_kept) that stood for the tables when this run
# began, instead of a read started ahead: backend -> (its token, its text).
_kept: dict[str, tuple[object, str]] = {}


def take_kept(backend: str) -> tuple[object, str] | None:
    return _kept.pop(backend, None)


def still_reading() -> bool:
    """Whether a read started ahead is still running: the run would wait for it."""
    return any(early.proc.poll() is None for early in _ahead.values())


_MODULE = {"legacy": "ip_tables", "nft": "nf_tables"}


def might_load_module(name: str, proc: Path = Path("/proc"), sysfs: Path = Path("/sys")) -> bool:
    """Whether reading this backend could make the kernel load its module: a read ahead must
    not, for a spec that names the other backend would never have read it."""
    try:
        loaded = (proc / "modules").read_text()
    except FileNotFoundError:
        return False  # a kernel without modules: everything is built in
    except OSError:
        return True
    listed = any(line.startswith(f"{name} ") for line in loaded.splitlines())
    return not listed and not (sysfs / "module" / name).exists()


@contextlib.contextmanager
def reading_ahead(spec: str | None = None) -> Iterator[None]:
    """Start reading every installed backend's tables now, on another core, while the spec is
    read and checked (at 100,000 published ports both take about half a second); only the
    backend the spec names, when a string search of it finds one (`named_backend`). Only
    `save` decides whether the result may be used; what it never takes is stopped here."""
    began, began_ns = time.time(), time.monotonic_ns()
    named = named_backend(spec) if spec is not None else None
    with contextlib.ExitStack() as files:
        for backend in BACKENDS:
            if named not in (None, backend):
                continue
            if not available(backend) or might_load_module(_MODULE[backend]):
                continue
            before = token_or_unknown(backend)
            owned = owned_table(backend, before)
            kept = _kept_read(before) if backend == "nft" else None
            if kept is not None:
                _kept[backend] = (before, kept)
                continue
            out = files.enter_context(scratch())
            try:
                proc = subprocess.Popen(
                    [f"iptables-{backend}-save"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.DEVNULL,
                )
            except OSError:
                continue
            _ahead[backend] = _Early(began, began_ns, proc, out, before, owned)
        try:
            yield
        finally:
            _kept.clear()
            while _ahead:
                early = _ahead.popitem()[1]
                early.proc.kill()
                early.proc.wait()


def _kept_read(token: object) -> str | None:
    """A read of nf_tables kept by an earlier run that stands for the tables at `token`
    (tables_kept), looked for only when its file is there: that module's imports
    (dataclasses among them) would otherwise come before the read starts."""
    where = cachedir.directory()
    try:
        if where is None or not (where / cachedir.TABLES_NFT).exists():
            return None
    except OSError:  # a directory this user may not search: nothing kept for it
        return None
    from dockyard.state import tables_kept

    return tables_kept.get(token, RULE_BYTES)


_LARGEST = 64 << 20  # spec/limits.py's MAX_BYTES: the loader refuses a larger spec anyway
_NAMED = re.compile(rb"""["']?[ \t]*:[ \t]*["']?(legacy|nft)["']?[ \t]*(?:[,}#\r\n]|$)""")


def named_backend(spec: str) -> str | None:
    """The backend a spec file names in `network.iptables_backend`, guessed by a string
    search before the spec is read: the key once, its value `legacy` or `nft`. None for
    anything else (`auto`, the key absent or twice, not a regular file: a pipe is never
    read here). A wrong guess costs a read of the other backend later, never a wrong one:
    `save` reads what was not read ahead. At 100,000 published ports, not reading nf_tables
    beside legacy xtables saves a run about 30 ms."""
    try:
        fd = os.open(spec, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _LARGEST:
            return None
        # Read, not mapped: a file cut short while mapped would end the process with SIGBUS.
        data = os.read(fd, info.st_size)
        key = b"iptables_backend"
        at = data.find(key)
        if at < 0 or data.find(key, at + 1) >= 0:
            return None
        found = _NAMED.match(data, at + len(key), at + len(key) + 64)
        return found[1].decode() if found else None
    except OSError:
        return None
    finally:
        os.close(fd)
