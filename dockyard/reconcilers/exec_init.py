"""exec: `<root>/init/dockerinit-<version>`, a copy of `exec.init_path` that containers run
first. Same sha256, mode 0700; a different file there is replaced atomically."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.spec import Spec
from dockyard.state import safepath
from dockyard.state.host import Host

SOURCE_LIMIT = 256 << 20  # dockerinit is a few MiB


@dataclass(frozen=True)
class ExecObserved:
    target: str
    source: str | None = None
    source_sha256: str | None = None
    source_error: str | None = None
    target_sha256: str | None = None
    target_mode: str | None = None


def _digest(fd: int, limit: int) -> str:
    """The sha256 of at most `limit` bytes (a file that grows meanwhile is cut there)."""
    digest = hashlib.sha256()
    left = limit
    while left > 0:
        block = os.read(fd, min(1 << 20, left))
        if not block:
            break
        digest.update(block)
        left -= len(block)
    return digest.hexdigest()


def read_source(path: Path) -> bytes:
    """`exec.init_path`, which must be a regular file: read whole, without blocking."""
    return safepath.read_file(path, SOURCE_LIMIT)


class ExecInit:
    name: ClassVar[str] = "exec"
    after: ClassVar[tuple[str, ...]] = ("directories",)
    observation: ClassVar[type] = ExecObserved

    def observe(self, spec: Spec, host: Host) -> ExecObserved:
        rel = f"init/dockerinit-{spec.exec.version}"
        target = host.root / rel
        source = Path(spec.exec.init_path) if spec.exec.init_path else None
        source_sha = error = None
        if source is not None:
            try:
                source_sha = hashlib.sha256(read_source(source)).hexdigest()
            except OSError as e:
                error = (e.strerror or str(e)).lower()
            except DockyardError as e:
                error = str(e).removeprefix(f"{source} ")
        target_sha = mode = None
        found = host.fs.expect(rel, "file")
        if found.kind == "file" and found.size > SOURCE_LIMIT:
            raise DockyardError(
                f"{target} is larger than {SOURCE_LIMIT:,} bytes: not a dockerinit; left alone"
            )
        if found.kind == "file":
            with host.fs.open_regular(rel) as fd:
                target_sha = _digest(fd, SOURCE_LIMIT)
            mode = found.octal
        return ExecObserved(
            str(target), str(source) if source else None, source_sha, error, target_sha, mode
        )

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        obs = seen[ExecObserved]
        if obs.source is None or obs.source_sha256 is None:
            return []
        after = {"sha256": obs.source_sha256, "mode": "0700", "from": obs.source}
        if obs.target_sha256 is None:
            return [Change(self.name, "file", obs.target, "create", None, after, "not installed")]
        before = {"sha256": obs.target_sha256, "mode": obs.target_mode, "from": obs.source}
        if obs.target_sha256 != obs.source_sha256:
            return [
                Change(
                    self.name,
                    "file",
                    obs.target,
                    "replace",
                    before,
                    after,
                    f"differs from {obs.source}",
                    reversible=False,
                )
            ]
        if obs.target_mode != "0700":
            return [Change(self.name, "file", obs.target, "update", before, after, "mode drifted")]
        return []

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        obs = seen[ExecObserved]
        if obs.source_error:
            return [Note(self.name, "error", f"exec.init_path {obs.source}: {obs.source_error}")]
        return []

    def apply(self, change: Change, host: Host) -> None:
        rel = str(Path(change.name).relative_to(host.root))
        after = change.after or {}
        if change.action == "delete":
            # The undo of a create in this run: only if it still is the copy dockyard made.
            host.fs.remove_file(rel, read_source(Path((change.before or {})["from"])), SOURCE_LIMIT)
            return
        if change.action == "update":
            host.fs.set_attrs(rel, "file", int(after["mode"], 8))
            return
        data = read_source(Path(after["from"]))
        if hashlib.sha256(data).hexdigest() != after["sha256"]:
            raise DockyardError(f"{after['from']} changed since it was observed; nothing installed")
        host.fs.write(rel, data, 0o700)
