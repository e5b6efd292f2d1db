"""pidfile: Docker's pid file. A stale one (dead pid, empty, garbage) blocks the daemon's start
and is removed; one naming a live process is reported and never touched.

In watch mode dockyard is the long-running process: it holds the file with its own pid
(`PidFile(hold=os.getpid())`) and another live holder is then an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.fsutil import atomic_write
from dockyard.reconcilers.base import Seen
from dockyard.spec import Spec
from dockyard.state.host import Host


@dataclass(frozen=True)
class PidFileObserved:
    path: str
    exists: bool
    content: str | None = None
    pid: int | None = None
    alive: bool = False
    command: str | None = None


def parse_pid(content: str) -> int | None:
    text = content.strip()
    return int(text) if text.isdigit() and 0 < int(text) < 2**22 else None


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


class PidFile:
    name: ClassVar[str] = "pidfile"
    after: ClassVar[tuple[str, ...]] = ("preflight",)
    observation: ClassVar[type] = PidFileObserved

    def __init__(self, hold: int | None = None) -> None:
        self.hold = hold

    def observe(self, spec: Spec, host: Host) -> PidFileObserved:
        path = Path(spec.pidfile)
        try:
            content = path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return PidFileObserved(str(path), exists=False)
        pid = parse_pid(content)
        alive = pid is not None and is_alive(pid)
        return PidFileObserved(
            str(path),
            exists=True,
            content=content[:64],
            pid=pid,
            alive=alive,
            command=_command(host.proc, pid) if alive and pid else None,
        )

    def _stale_reason(self, got: PidFileObserved) -> str:
        if got.pid is None:
            shown = (got.content or "").strip()
            return f"stale: holds {shown[:20]!r}, not a pid" if shown else "stale: empty"
        return f"stale: pid {got.pid} is not running"

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        got = seen[PidFileObserved]
        held: dict[str, object] | None = None
        if got.exists:
            held = (
                {"pid": got.pid}
                if got.pid is not None
                else {"content": (got.content or "").strip()}
            )
        if got.exists and got.alive and got.pid is not None:
            return []  # a live holder is never touched; `check` reports it
        if self.hold is None:
            if not got.exists:
                return []
            return [
                Change(
                    self.name, "pidfile", got.path, "delete", held, None, self._stale_reason(got)
                )
            ]
        want = {"pid": self.hold}
        if not got.exists:
            return [
                Change(
                    self.name,
                    "pidfile",
                    got.path,
                    "create",
                    None,
                    want,
                    "dockyard holds it while it runs",
                )
            ]
        return [
            Change(self.name, "pidfile", got.path, "replace", held, want, self._stale_reason(got))
        ]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        got = seen[PidFileObserved]
        if not (got.exists and got.alive) or got.pid == self.hold:
            return []
        who = f"pid {got.pid}" + (f" ({got.command})" if got.command else "")
        if self.hold is not None:
            return [
                Note(
                    self.name,
                    "error",
                    f"pid file found, ensure docker is not running or delete {got.path} "
                    f"(held by live {who})",
                )
            ]
        return [Note(self.name, "info", f"{got.path} is held by live {who}; left alone")]

    def teardown(self, spec: Spec, seen: Seen) -> tuple[list[Change], list[Note]]:
        """`down`: a stale pid file goes; one a live process holds stays."""
        got = seen[PidFileObserved]
        if not got.exists:
            return [], []
        if got.alive and got.pid is not None:
            return [], [Note(self.name, "info", f"{got.path} stays: live pid {got.pid} holds it")]
        held = {"pid": got.pid} if got.pid is not None else {"content": (got.content or "").strip()}
        return [
            Change(self.name, "pidfile", got.path, "delete", held, None, self._stale_reason(got))
        ], []

    def apply(self, change: Change, host: Host) -> None:
        path = Path(change.name)
        if change.action in ("delete", "replace"):
            self._refuse_if_taken(path)
        if change.action == "delete":
            path.unlink(missing_ok=True)
            return
        after = change.after or {}
        pid = after.get("pid")
        data = f"{pid}\n" if pid is not None else str(after.get("content") or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data.encode(), 0o644)

    def _refuse_if_taken(self, path: Path) -> None:
        """A daemon may have started since the observation: never remove a live holder's file."""
        try:
            pid = parse_pid(path.read_text(errors="replace"))
        except FileNotFoundError:
            return
        if pid is not None and pid != self.hold and is_alive(pid):
            raise OSError(f"{path} was taken by live pid {pid} since it was observed; left alone")
