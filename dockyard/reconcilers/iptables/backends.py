"""Where the rules live: legacy xtables or nf_tables, read with `*-save` and written with
`*-restore --noflush`, one atomic commit per table, under the xtables lock.

Both backends go through the iptables tools rather than python-iptables: importing
python-iptables costs about 0.4 s here and it decodes every rule of a chain it touches
(0.7 s to read 10,000 rules back), while `iptables-legacy-save` reads them in 0.02 s and
`iptables-legacy-restore` commits a table in one step. `make bench` measures both.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard import background
from dockyard.errors import DockyardError
from dockyard.state import bootfacts, netfilter, tables_kept
from dockyard.state.safepath import Tree
from dockyard.state.scratch import scratch
from dockyard.state.scratch import text as scratch_text
from dockyard.state.tables_ahead import (
    RULE_BYTES,
    UNKNOWN,
    owned_table,
    take,
    take_kept,
    token_or_unknown,
)

DEFAULT_LOCK = "/run/xtables.lock"


# The multi-call binaries of iptables 1.8+, each of one backend whatever name runs it.
MULTI_CALL = {"xtables-nft-multi": "nft", "xtables-legacy-multi": "legacy"}


def linked_backend() -> str | None:
    """The backend the plain `iptables` command uses on this host: the multi-call binary it
    resolves to (Debian's alternatives), else what `iptables --version` says."""
    found = shutil.which("iptables")
    if found is None:
        return None
    known = MULTI_CALL.get(Path(found).resolve().name)
    if known is not None:
        return known
    try:
        out = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return None
    if "nf_tables" in out.stdout:
        return "nft"
    return "legacy" if "legacy" in out.stdout else None


def save(backend: str, written: Path | None = None) -> str:
    """The backend's tables as `iptables-<backend>-save` prints them. A read started ahead
    (`reading_ahead`) is taken instead when `written`, the stamp dockyard touches before and
    after each commit, shows that no commit of dockyard's can have happened since that read
    began. On nf_tables, a read kept from an earlier run at the generation the tables still
    have is taken instead of reading (`tables_kept`), and a read that stands for its
    generation is kept (`_keep`)."""
    _read_clean[backend] = False
    early = take(backend)
    if early is not None:
        if early.proc.poll() is None:  # still reading: a real wait
            background.waiting()
        text = early.result()
        fresh = written is not None and _untouched_since(written, early.began, early.began_ns)
        if text is not None and fresh:
            _read_token[backend] = early.token
            _keep(backend, early.token, early.owned, text)
            return text
    before = token_or_unknown(backend)
    _read_token[backend] = before
    if backend == "nft":
        kept = take_kept(backend)
        text = kept[1] if kept is not None and kept[0] == before else None
        text = text if text is not None else tables_kept.get(before, RULE_BYTES)
        if text is not None:
            _read_clean[backend] = True
            return text
    owned = owned_table(backend, before)  # asked before the read begins: see there
    if backend == "legacy":
        names = netfilter.legacy_tables()
        text = _side_by_side(names) if names is not None and len(names) > 1 else None
        if text is not None:
            return text
    background.waiting()
    try:
        # Bytes, decoded once: a text pipe decodes 20 MB in small pieces, 0.1-0.2 s more.
        result = subprocess.run([f"iptables-{backend}-save"], capture_output=True, check=False)
    except OSError as e:
        raise DockyardError(f"cannot run iptables-{backend}-save: {e.strerror}") from None
    if result.returncode != 0:
        why = result.stderr.decode(errors="replace").strip()
        raise DockyardError(f"iptables-{backend}-save failed: {why}")
    text = result.stdout.decode(errors=RULE_BYTES)
    _keep(backend, before, owned, text)
    return text


def _keep(backend: str, before: object, owned: bool, text: str) -> None:
    """Keep a read of nf_tables that stands for the tables at its generation from then on
    (`read_clean`): begun at generation `before` with no table owned by a process, and the
    generation the same once it ended."""
    clean = backend == "nft" and not owned and token_or_unknown(backend) == before
    _read_clean[backend] = clean
    if clean and len(text) >= tables_kept.FROM:
        tables_kept.put(before, text, RULE_BYTES)


# Per backend, whether the read `save` last returned stands for the tables for as long as the
# generation stays (`_keep`, tables_ahead.owned_table).
_read_clean: dict[str, bool] = {}


def read_clean(backend: str) -> bool:
    return _read_clean.get(backend, False)


# The token each backend had just before the read `save` last returned began.
_read_token: dict[str, object] = {}


def read_token(backend: str) -> object:
    """The tables' token from just before the read that `save` last returned began: the read
    holds every change before it, and none after it while the token stays."""
    return _read_token.get(backend, UNKNOWN)


def _side_by_side(tables: tuple[str, ...]) -> str | None:
    """Each legacy table read by its own `iptables-legacy-save -t TABLE`, all at once: the
    kernel hands each table over on its own anyway, and on two cores nat and filter are read
    in the time of the larger. None when one fails (a table gone in between): the caller
    reads them in one go instead."""
    with contextlib.ExitStack() as files:
        running = []
        for table in tables:
            out = files.enter_context(scratch())
            try:
                proc = subprocess.Popen(
                    ["iptables-legacy-save", "-t", table],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.DEVNULL,
                )
            except OSError:
                break
            running.append((proc, out))
        background.waiting()
        ok = len(running) == len(tables)
        texts = []
        for proc, out in running:
            ok = proc.wait() == 0 and ok
            texts.append(scratch_text(out, RULE_BYTES) if ok else "")
    return "".join(texts) if ok else None


# Pauses before reading a chain again when iptables-nft called it incompatible but nf_tables
# has it: another program (dockerd restarting) was deleting and making it between the reads.
CHAIN_AGAIN = (0.05, 0.1, 0.2, 0.4)


def list_chain(backend: str, table: str, chain: str) -> str | None:
    """`iptables-<backend> -t TABLE -S CHAIN`: one chain, as `-S` prints it (its rules in
    iptables-save's form); None when the chain does not exist. iptables-nft fetches only that
    chain from the kernel, where a whole save of 100,000 rules takes it half a minute."""
    argv = [f"iptables-{backend}", "-t", table, "-S", chain]
    for pause in (*CHAIN_AGAIN, None):
        try:
            result = subprocess.run(argv, capture_output=True, check=False)
        except OSError as e:
            raise DockyardError(f"cannot run iptables-{backend}: {e.strerror}") from None
        if result.returncode == 0:
            return result.stdout.decode(errors=RULE_BYTES)
        why = result.stderr.decode(errors="replace").strip()
        if result.returncode == 1 and "No chain/target/match by that name" in why:
            return None
        if result.returncode != 1 or backend != "nft":
            break
        # iptables-nft 1.8.9 says "incompatible" of a chain that does not exist, too.
        if not _nft_chain_exists(table, chain):
            return None
        if "incompatible" not in why or pause is None:
            break
        time.sleep(pause)
    raise DockyardError(f"iptables-{backend} -t {table} -S {chain} failed: {why}")


def _nft_chain_exists(table: str, chain: str) -> bool:
    try:
        return netfilter.nft_chain_exists(table, chain)
    except OSError:
        return True  # cannot tell: the error above stands


# File times come from the kernel's coarse clock, up to a tick behind time.time(), and some
# filesystems keep whole seconds: by its time alone, a read that began less than this after a
# commit is not trusted.
_CLOCK_SLACK = 1.0


# Whose monotonic clock the stamp's reading is on: the same for the whole process.
_clock = functools.cache(bootfacts.monotonic_clock)


def _untouched_since(written: Path, began: float, began_ns: int) -> bool:
    """Whether the stamp shows no commit of dockyard's since a read began (`time.time()`,
    `time.monotonic_ns()`): by the monotonic reading written in it when it is on this
    process's clock, else by its modification time.
    Never following a symlink: a stamp that is not dockyard's regular file proves nothing."""
    tree = Tree(written.parent)
    try:
        stamp = tree.stat(written.name)
        if stamp.kind == "missing":
            return True  # dockyard has never committed here
        content = tree.read(written.name, limit=256) if stamp.kind == "file" else None
    except (OSError, DockyardError):
        return False
    if content is None:
        return False
    clock, _, reading = content.decode(errors="replace").strip().rpartition(" ")
    if clock and clock == _clock() and reading.isdigit():
        return int(reading) < began_ns
    return stamp.mtime < began - _CLOCK_SLACK


def touch(written: Path) -> None:
    """Mark a commit of dockyard's, before it and again when it has ended: reads started
    ahead before then are stale. The stamp holds a monotonic reading, which neither the
    filesystem's time granularity nor a step of the wall clock blurs."""
    clock = _clock()
    reading = f"{clock} {time.monotonic_ns()}\n" if clock else ""
    # In place, no fsync: a reader that finds it half written, or a stamp a crash damaged,
    # falls back on the modification time, which the write has set.
    with Tree(written.parent).open_private(written.name) as fd:
        os.ftruncate(fd, 0)
        os.write(fd, reading.encode())
        os.utime(fd)


def lock_path(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("XTABLES_LOCKFILE") or DEFAULT_LOCK)


class XtablesLockTimeout(DockyardError):
    pass


XTABLES_TELL_AFTER = 1.0  # seconds of waiting before saying so


def lock_holder(fd: int) -> str:
    """Who holds the flock on `fd`'s file, from /proc/locks: `pid N (comm)`."""
    st = os.fstat(fd)
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return "another program"
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == where:
            return f"pid {fields[4]}{_comm(fields[4])}"
    return "another program"


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f" ({f.read().strip()})"
    except OSError:
        return ""


@contextlib.contextmanager
def xtables_lock(path: Path, timeout: float) -> Iterator[None]:
    """The lock every iptables tool takes before it changes a table, held by dockyard for
    the whole commit. A holder that outlasts `timeout` is a clear error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _wait_for_lock(fd, path, timeout)
        yield
    finally:
        os.close(fd)


def _wait_for_lock(fd: int, path: Path, timeout: float) -> None:
    """The lock is held: tried again until `timeout` (tenacity is imported only then)."""
    import tenacity

    started, told = time.monotonic(), False

    def tell(state: tenacity.RetryCallState) -> None:
        nonlocal told
        if not told and time.monotonic() - started >= XTABLES_TELL_AFTER:
            told = True
            print(f"waiting for the xtables lock (held by {lock_holder(fd)})", file=sys.stderr)

    try:
        for attempt in tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(BlockingIOError),
            stop=tenacity.stop_after_delay(timeout),
            wait=tenacity.wait_fixed(0.05),
            before_sleep=tell,
            reraise=True,
        ):
            with attempt:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise XtablesLockTimeout(
            f"the xtables lock {path} is held by another program; gave up after "
            f"{timeout:g}s (network.iptables_lock_timeout)"
        ) from None


@dataclass
class Restore:
    """One backend's writer: a `*-restore --noflush` script per table."""

    backend: str
    lock: Path
    timeout: float
    written: Path | None = None  # the stamp touched before each commit (see `save`)
    # Asked under the lock just before and just after the commits: `tokens` (None: it failed).
    around: Callable[[], object] | None = None
    tokens: tuple[object, object] | None = None

    def commit(self, table: str, commands: list[str]) -> None:
        _, failed = self.commit_all([(table, commands)])
        if failed:
            raise failed[0]

    def commit_all(
        self, scripts: list[tuple[str, list[str]]]
    ) -> tuple[list[str], list[CommitFailed]]:
        """Commit each table's script, all under one hold of the xtables lock: the tables
        committed, and the failures. Legacy tables are independent in the kernel, so theirs
        run side by side; nf_tables transactions go one after the other, and stop at the first
        failure."""
        self.tokens = None
        with xtables_lock(self.lock, self.timeout), tempfile.TemporaryDirectory() as private:
            if self.written is not None:
                touch(self.written)
            try:
                before = self._around()
                done = self._run_all(scripts, private)
                after = self._around()
                self.tokens = (before, after) if before is not None and after is not None else None
                return done
            finally:
                if self.written is not None:  # a read begun during the commit is stale too
                    touch(self.written)

    def _around(self) -> object:
        try:
            return self.around() if self.around is not None else None
        except OSError:
            return None

    def _run_all(
        self, scripts: list[tuple[str, list[str]]], private: str
    ) -> tuple[list[str], list[CommitFailed]]:
        committed: list[str] = []
        failed: list[CommitFailed] = []
        parallel = self.backend == "legacy"
        running = []
        for table, commands in scripts:
            # dockyard holds the real lock; each tool takes a private one it will always get,
            # its own: iptables-legacy-restore holds it all along, and a shared one would make
            # the tables' commits wait for each other (at 100,000 ports, 1.4 s instead of 0.95).
            lock = Path(private) / f"{table}.lock"
            env = {**os.environ, "XTABLES_LOCKFILE": str(lock)}
            running.append((table, self._start(table, commands, env)))
            if not parallel:
                error = _finish(self.backend, *running.pop())
                if error:
                    failed.append(error)
                    break
                committed.append(table)
        _until_one_left([proc for _, proc in running])
        for table, proc in running:
            error = _finish(self.backend, table, proc)
            if error:
                failed.append(error)
            else:
                committed.append(table)
        return committed, failed

    def _start(
        self, table: str, commands: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        # A file, not a pipe: Python pumps a pipe in 512-byte writes, and a script for
        # 100,000 rules is 20 MB.
        with scratch() as feed:
            feed.write(f"*{table}\n".encode())
            feed.write("\n".join(commands).encode(errors=RULE_BYTES))
            feed.write(b"\nCOMMIT\n")
            feed.seek(0)
            return subprocess.Popen(
                [f"iptables-{self.backend}-restore", "--noflush"],
                stdin=feed,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )


def _until_one_left(procs: list[subprocess.Popen[bytes]]) -> None:
    """Wait until at most one of the tools runs: the work held for a wait (background.py)
    starts when a core is free of them, not beside nat's and filter's commits on two cores
    (at 100,000 ports, filter's ends about 0.5 s before nat's)."""
    import select

    fds: list[int] = []
    try:
        for proc in procs:
            if proc.poll() is None:  # not reaped: its pid is its own
                fds.append(os.pidfd_open(proc.pid))
        while sum(proc.poll() is None for proc in procs) > 1:
            select.select(fds, [], [])  # a pidfd is readable once its process has ended
    except OSError:
        pass  # no pidfd here: the work starts with the first wait, as it did
    finally:
        for fd in fds:
            os.close(fd)


def _finish(backend: str, table: str, proc: subprocess.Popen[bytes]) -> CommitFailed | None:
    background.waiting()
    _, err = proc.communicate()
    if proc.returncode == 0:
        return None
    detail = err.decode(errors="replace").strip()
    return CommitFailed(backend, table, detail, transient=_transient(detail))


class CommitFailed(DockyardError):
    def __init__(self, backend: str, table: str, detail: str, transient: bool) -> None:
        super().__init__(f"iptables-{backend}-restore could not commit table {table}: {detail}")
        self.table, self.transient = table, transient


def _transient(stderr: str) -> bool:
    return "temporarily unavailable" in stderr.lower() or "try again" in stderr.lower()
