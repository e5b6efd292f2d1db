"""exec: `<root>/init/dockerinit-<version>`, a copy of `exec.init_path` that containers run
first. Same sha256, mode 0700; a different file there is replaced atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.fsutil import fsync_dir
from dockyard.reconcilers.base import Seen
from dockyard.spec import Spec
from dockyard.state.host import Host


@dataclass(frozen=True)
class ExecObserved:
    target: str
    source: str | None = None
    source_sha256: str | None = None
    source_error: str | None = None
    target_sha256: str | None = None
    target_mode: str | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ExecInit:
    name: ClassVar[str] = "exec"
    after: ClassVar[tuple[str, ...]] = ("directories",)
    observation: ClassVar[type] = ExecObserved

    def observe(self, spec: Spec, host: Host) -> ExecObserved:
        target = host.root / "init" / f"dockerinit-{spec.exec.version}"
        source = Path(spec.exec.init_path) if spec.exec.init_path else None
        source_sha = error = None
        if source is not None:
            try:
                source_sha = _sha256(source)
            except OSError as e:
                error = (e.strerror or str(e)).lower()
        target_sha = mode = None
        if target.is_file():
            target_sha = _sha256(target)
            mode = f"{target.stat().st_mode & 0o7777:04o}"
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
        target = Path(change.name)
        after = change.after or {}
        if change.action == "delete":
            target.unlink(missing_ok=True)  # the undo of a create in this run
            return
        if change.action == "update":
            target.chmod(int(after["mode"], 8))
            return
        source = Path(after["from"])
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    out.write(block)
                out.flush()
                os.fchmod(out.fileno(), 0o700)
                os.fsync(out.fileno())
            if _sha256(Path(tmp)) != after["sha256"]:
                raise OSError(f"{source} changed while it was copied; nothing installed")
            Path(tmp).replace(target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        fsync_dir(target.parent)
