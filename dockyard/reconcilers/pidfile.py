"""pidfile: Docker's pid file. A stale one (a pid that is not running) blocks the daemon's
start and is removed; one naming a live process is reported and never touched.

Only a pid file is ever removed: a small regular file whose whole content is one decimal pid
in ASCII digits. Anything else at that path (another file named by mistake, a symlink, a
FIFO) is reported and left alone. The undo of a removal puts back the same bytes, mode and
owner.

The file is Docker's: dockyard never writes its own pid there (the watch's pid goes in
`<state_dir>/dockyard.pid`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.spec import Spec
from dockyard.state.host import Host
from dockyard.state.safepath import Tree

PID_MAX = 1 << 22  # the kernel's PID_MAX_LIMIT
LIMIT = 64  # a pid file holds at most 7 digits and a newline
_PID = re.compile(rb"([0-9]{1,7})\n?")


@dataclass(frozen=True)
class PidFileObserved:
    path: str
    exists: bool
    content: str | None = None  # the whole content of a pid file
    pid: int | None = None
    alive: bool = False
    command: str | None = None
    mode: str | None = None
    owner: str | None = None
    problem: str | None = None  # why what is there is not a pid file


def parse_pid(content: bytes) -> int | None:
    """The pid of a pid file's whole content: ASCII digits, one optional newline."""
    found = _PID.fullmatch(content)
    if found is None:
        return None
    pid = int(found.group(1))
    return pid if 0 < pid < PID_MAX else None


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command(proc: Path, pid: int) -> str | None:
    try:
        return (proc / str(pid) / "comm").read_text().strip() or None
    except OSError:
        return None


def _at(path: Path) -> tuple[Tree, str]:
    """The pid file's directory is the system's (/var/run is often a link to /run); the file
    itself is never followed."""
    return Tree(path.parent), path.name


def read_pidfile(path: Path) -> tuple[bytes | None, Any, str | None]:
    """(content, what lstat found, problem); content None when missing or not a pid file."""
    tree, name = _at(path)
    try:
        found = tree.stat(name)
        if found.kind == "missing":
            return None, found, None
        if found.kind != "file" or found.nlink > 1:
            return None, found, f"is {found.describe()}, not a pid file"
        content = tree.read(name, LIMIT)
    except DockyardError as e:
        return None, None, str(e).removeprefix(f"{path} ")
    if content is None:
        return None, tree.stat(name), None
    if parse_pid(content) is None:
        return None, found, f"holds {content[:20]!r}, not one pid in decimal digits"
    return content, found, None


def inside_managed(path: Path, host: Host) -> str | None:
    """Why `path` may not be touched when, its directory's symlinks resolved, it is under
    `root` or `state_dir`: the spec's rule checks the paths as written only."""
    where = Path(os.path.realpath(path.parent)) / path.name
    for field, directory, whose in (
        ("root", host.root, "Docker's data"),
        ("state_dir", host.state_dir, "dockyard's own state"),
    ):
        real = Path(os.path.realpath(directory))
        if where == real or real in where.parents:
            return f"is inside {field} ({real}) through a symlink: what is under {field} is {whose}"
    return None


class PidFile:
    name: ClassVar[str] = "pidfile"
    after: ClassVar[tuple[str, ...]] = ("preflight",)
    observation: ClassVar[type] = PidFileObserved

    def observe(self, spec: Spec, host: Host) -> PidFileObserved:
        path = Path(spec.pidfile)
        inside = inside_managed(path, host)
        if inside:
            return PidFileObserved(str(path), exists=True, problem=inside)
        content, found, problem = read_pidfile(path)
        if problem:
            return PidFileObserved(str(path), exists=True, problem=problem)
        if content is None or found is None:
            return PidFileObserved(str(path), exists=False)
        pid = parse_pid(content)
        alive = pid is not None and is_alive(pid)
        return PidFileObserved(
            str(path),
            exists=True,
            content=content.decode("ascii"),
            pid=pid,
            alive=alive,
            command=_command(host.proc, pid) if alive and pid else None,
            mode=found.octal,
            owner=found.owner,
        )

    def _stale_reason(self, got: PidFileObserved) -> str:
        return f"stale: pid {got.pid} is not running"

    @staticmethod
    def _held(got: PidFileObserved) -> dict[str, Any]:
        """Everything an undo needs to put the file back as it was."""
        return {"pid": got.pid, "content": got.content, "mode": got.mode, "owner": got.owner}

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        got = seen[PidFileObserved]
        if got.problem or not got.exists or got.alive:
            return []  # not a pid file, or a live holder: never touched; `check` says so
        return [self._removal(got)]

    def _removal(self, got: PidFileObserved) -> Change:
        held = self._held(got)
        return Change(self.name, "pidfile", got.path, "delete", held, None, self._stale_reason(got))

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        got = seen[PidFileObserved]
        if got.problem:
            return [Note(self.name, "warning", f"{got.path} {got.problem}; left alone")]
        if not (got.exists and got.alive):
            return []
        who = f"pid {got.pid}" + (f" ({got.command})" if got.command else "")
        return [Note(self.name, "info", f"{got.path} is held by live {who}; left alone")]

    def teardown(self, spec: Spec, seen: Seen) -> tuple[list[Change], list[Note]]:
        """`down`: a stale pid file goes; one a live process holds stays."""
        got = seen[PidFileObserved]
        if got.problem:
            return [], [Note(self.name, "warning", f"{got.path} {got.problem}; left alone")]
        if not got.exists:
            return [], []
        if got.alive and got.pid is not None:
            return [], [Note(self.name, "info", f"{got.path} stays: live pid {got.pid} holds it")]
        return [self._removal(got)], []

    def apply(self, change: Change, host: Host) -> None:
        tree, name = _at(Path(change.name))
        before = change.before or {}
        if change.action == "delete":
            self._refuse_if_taken(Path(change.name), before)
            tree.remove_file(name, str(before["content"]).encode())
            return
        after = change.after or {}  # the undo of a removal: the file as it was
        data, mode = str(after["content"]).encode(), int(after["mode"], 8)
        tree.write(name, data, mode, after["owner"], replace=False)

    def _refuse_if_taken(self, path: Path, before: Mapping[str, Any]) -> None:
        """A daemon may have started since the observation: never remove a live holder's file,
        nor anything that is no longer the pid file that was observed."""
        content, _, problem = read_pidfile(path)
        if problem:
            raise DockyardError(f"{path} {problem} since it was observed; left alone")
        if content is None:
            return
        pid = parse_pid(content)
        if pid is not None and is_alive(pid):
            raise DockyardError(
                f"{path} was taken by live pid {pid} since it was observed; left alone"
            )
        if before.get("content") is not None and content.decode() != before["content"]:
            raise DockyardError(f"{path} changed since it was observed; left alone")
