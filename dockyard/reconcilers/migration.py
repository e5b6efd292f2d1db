"""migration: a legacy `<root>/graph` (one directory per image, its files under `layer/`) moved
into the chosen driver's layout, as Docker's aufs migration did, and into vfs the same way.

Nothing is copied and nothing is deleted: every move is a rename on the same filesystem.
Before the first move the whole list of steps is written to a journal under the root and
fsynced; each step is idempotent and recorded when done, so a migration killed at any point
is finished by the next run with the same result.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dockyard.change import Action, Change, Note
from dockyard.errors import DockyardError
from dockyard.fsutil import atomic_write, fsync_dir
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.storage import StorageObserved, chosen
from dockyard.spec import Spec
from dockyard.state.host import Host

JOURNAL = ".dockyard-migration.journal"
PROGRESS = ".dockyard-migration.progress"
MIGRATES_INTO = ("aufs", "vfs")
# What Docker's setupInitLayer puts in a container's init layer (empty placeholders).
INIT_DIRS = ("dev/pts", "dev/shm", "proc", "sys", "etc")
INIT_FILES = (
    ".dockerinit",
    ".dockerenv",
    "etc/resolv.conf",
    "etc/hosts",
    "etc/hostname",
    "dev/console",
)
# For tests of crash safety only: die (SIGKILL) after this many step events.
CRASH_AFTER = "DOCKYARD_CRASH_AFTER_STEPS"


@dataclass(frozen=True)
class Image:
    id: str
    parent: str | None  # an image with a layer/ directory; others are not migrated
    error: str | None = None


@dataclass(frozen=True)
class Container:
    id: str
    image: str | None  # a container with an rw/ directory; others are not migrated
    error: str | None = None


@dataclass(frozen=True)
class MigrationObserved:
    root: str
    images: tuple[Image, ...] = ()
    containers: tuple[Container, ...] = ()
    repositories: str = "absent"  # "absent", "ok", or what is wrong with it
    journal: tuple[tuple[str, ...], ...] = ()  # the steps of an interrupted migration
    journal_error: str | None = None


@dataclass(frozen=True)
class Step:
    """One idempotent action: ("rename", src, dst), ("mkdir", dir), ("write", file, text),
    ("init", dir). Paths are relative to the root."""

    args: tuple[str, ...]

    @property
    def kind(self) -> str:
        return self.args[0]


def _load_json(path: Path) -> tuple[Any, str | None]:
    try:
        return json.loads(path.read_text()), None
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as e:
        return None, f"not valid JSON ({e.__class__.__name__}: {e})"


def _images(graph: Path) -> list[Image]:
    out = []
    for entry in sorted(graph.iterdir()) if graph.is_dir() else []:
        if not (entry / "layer").is_dir():
            continue
        meta, error = _load_json(entry / "json")
        parent = meta.get("parent") if isinstance(meta, dict) else None
        out.append(Image(entry.name, parent or None, error and f"json: {error}"))
    return out


def _containers(where: Path) -> list[Container]:
    out = []
    for entry in sorted(where.iterdir()) if where.is_dir() else []:
        if not (entry / "rw").is_dir():
            continue
        meta, error = _load_json(entry / "config.json")
        image = meta.get("Image") if isinstance(meta, dict) else None
        out.append(Container(entry.name, image, error and f"config.json: {error}"))
    return out


def chain(image: str, parents: dict[str, str | None]) -> list[str]:
    """`image` and its ancestors, nearest first."""
    out = [image]
    while parents.get(out[-1]):
        out.append(str(parents[out[-1]]))
    return out


def plan_steps(driver: str, obs: MigrationObserved) -> tuple[list[Step], list[str]]:
    """Pure: the steps of the migration into `driver`, and the layers left in place (why)."""
    parents = {i.id: i.parent for i in obs.images if i.error is None}
    left: list[str] = []
    usable: dict[str, bool] = {}

    def ok(image: str) -> bool:
        if image not in usable:
            parent = parents.get(image)
            usable[image] = image in parents and (parent is None or ok(parent))
        return usable[image]

    steps: list[Step] = []
    if obs.repositories == "ok":
        steps.append(Step(("rename", "repositories", f"repositories-{driver}")))
    done: set[str] = set()

    def migrate(image: str) -> None:
        if image in done:
            return
        parent = parents[image]
        if parent:
            migrate(parent)
        done.add(image)
        steps.extend(_layer(driver, f"graph/{image}/layer", image, chain(image, parents)[1:]))

    for image in obs.images:
        if image.error:
            left.append(f"graph/{image.id}: {image.error}; left in place")
        elif not ok(image.id):
            missing = next(p for p in chain(image.id, parents) if p not in parents)
            left.append(f"graph/{image.id}: its parent {missing} is missing; left in place")
        else:
            migrate(image.id)
    for c in obs.containers:
        if c.error or not c.image or not ok(c.image):
            why = c.error or f"its image {c.image} cannot be migrated"
            left.append(f"containers/{c.id}/rw: {why}; left in place")
            continue
        image_chain = chain(c.image, parents)
        init = f"{c.id}-init"
        steps.extend(_layer(driver, None, init, image_chain))
        steps.extend(_layer(driver, f"containers/{c.id}/rw", c.id, [init, *image_chain]))
    return steps, left


def _layer(driver: str, source: str | None, layer: str, ancestors: list[str]) -> list[Step]:
    home = f"{driver}/diff/{layer}" if driver == "aufs" else f"{driver}/dir/{layer}"
    steps = [Step(("rename", source, home)) if source else Step(("init", home))]
    if driver == "aufs":
        steps.append(Step(("mkdir", f"aufs/mnt/{layer}")))
        steps.append(Step(("write", f"aufs/layers/{layer}", "".join(f"{a}\n" for a in ancestors))))
    return steps


def _describe(step: Step) -> tuple[str, str, dict[str, Any]]:
    """How a step reads in the plan; the change carries all apply needs to redo the step."""
    kind, *rest = step.args
    if kind == "rename":
        return "move", rest[0], {"path": rest[1]}
    if kind == "write":
        return "file", rest[0], {"content": rest[1]}
    if kind == "init":
        return "init layer", rest[0], {}
    return "directory", rest[0], {}


def _step_of(change: Change) -> tuple[int, Step]:
    after = change.after or {}
    kinds = {"move": "rename", "file": "write", "init layer": "init", "directory": "mkdir"}
    kind = kinds[change.kind]
    extra = (after["path"],) if kind == "rename" else (after["content"],) if kind == "write" else ()
    return int(after["step"]) - 1, Step((kind, change.name, *extra))


class Migration:
    name: ClassVar[str] = "migration"
    after: ClassVar[tuple[str, ...]] = ("storage",)
    observation: ClassVar[type] = MigrationObserved

    def observe(self, spec: Spec, host: Host) -> MigrationObserved:
        root = host.root
        journal: tuple[tuple[str, ...], ...] = ()
        journal_error = None
        if (root / JOURNAL).exists():
            try:
                journal = tuple(tuple(s) for s in json.loads((root / JOURNAL).read_text())["steps"])
            except (OSError, ValueError, KeyError, TypeError) as e:
                journal_error = f"{root / JOURNAL}: unreadable journal ({e})"
        _, repo_error = _load_json(root / "repositories")
        return MigrationObserved(
            str(root),
            tuple(_images(root / "graph")),
            tuple(_containers(root / "containers")),
            "ok" if repo_error is None else ("absent" if repo_error == "missing" else repo_error),
            journal,
            journal_error,
        )

    def _steps(self, spec: Spec, seen: Seen) -> tuple[list[Step], list[str], str | None]:
        obs = seen[MigrationObserved]
        if obs.journal:
            return [Step(s) for s in obs.journal], [], None
        if not spec.storage.migrate or not (obs.images or obs.containers):
            return [], [], None
        driver = chosen(spec, seen[StorageObserved]).driver
        if driver is None:
            return [], [], None
        if driver not in MIGRATES_INTO:
            return (
                [],
                [],
                (
                    f"a legacy graph under {obs.root}/graph waits for migration, and dockyard "
                    f"migrates into {' or '.join(MIGRATES_INTO)} only, not {driver}; set "
                    "storage.driver, or storage.migrate: false to leave it"
                ),
            )
        steps, left = plan_steps(driver, obs)
        return steps, left, None

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        steps, _, error = self._steps(spec, seen)
        if error or seen[MigrationObserved].repositories not in ("ok", "absent"):
            return []
        resumed = bool(seen[MigrationObserved].journal)
        reason = "finish the interrupted migration" if resumed else "legacy graph"
        changes = []
        for i, step in enumerate(steps):
            kind, name, attrs = _describe(step)
            action: Action = "update" if step.kind == "rename" else "create"
            before = {"step": i + 1, "path": name} if action == "update" else None
            after = {"step": i + 1, **attrs}
            changes.append(
                Change(self.name, kind, name, action, before, after, reason, reversible=False)
            )
        return changes

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        obs = seen[MigrationObserved]
        notes = []
        if obs.journal_error:
            notes.append(Note(self.name, "error", obs.journal_error))
        if obs.repositories not in ("ok", "absent") and spec.storage.migrate and obs.images:
            notes.append(
                Note(
                    self.name,
                    "error",
                    f"{obs.root}/repositories: {obs.repositories}; nothing is moved until it "
                    "is repaired",
                )
            )
        steps, left, error = self._steps(spec, seen)
        if error:
            notes.append(Note(self.name, "error", error))
        notes.extend(Note(self.name, "warning", why) for why in left)
        if obs.journal:
            notes.append(
                Note(
                    self.name,
                    "warning",
                    f"an interrupted migration is finished ({len(steps)} steps)",
                )
            )
        return notes

    def apply(self, change: Change, host: Host) -> None:
        self.apply_batch([change], host)

    def apply_batch(self, changes: Sequence[Change], host: Host) -> None:
        numbered = sorted(_step_of(c) for c in changes)
        run(host.root, [step for _, step in numbered], host.environ.get(CRASH_AFTER))


def run(root: Path, steps: list[Step], crash_after: str | None = None) -> None:
    """Journal the steps, carry them out, record each, and drop the journal when all are done.
    A journal already there is an interrupted run of these same steps: it is finished."""
    journal, progress = root / JOURNAL, root / PROGRESS
    if not journal.exists():
        atomic_write(journal, json.dumps({"steps": [s.args for s in steps]}).encode(), 0o600)
    done = _done(progress)
    events = 0
    limit = int(crash_after) if crash_after else None
    bar = Progress(len(steps))
    with open(progress, "a") as record:
        for index, step in enumerate(steps):
            if index not in done:
                _carry_out(root, step)
                events = _tick(events, limit)
                record.write(f"{index}\n")
                record.flush()
                os.fsync(record.fileno())
                events = _tick(events, limit)
            bar.advance()
    bar.close()
    fsync_dir(root)
    journal.unlink()
    progress.unlink()
    fsync_dir(root)


def _tick(events: int, limit: int | None) -> int:
    events += 1
    if limit is not None and events >= limit:
        os.kill(os.getpid(), signal.SIGKILL)
    return events


def _done(progress: Path) -> set[int]:
    try:
        return {int(line) for line in progress.read_text().split() if line.isdigit()}
    except FileNotFoundError:
        return set()


def _carry_out(root: Path, step: Step) -> None:
    kind, *rest = step.args
    if kind == "rename":
        src, dst = root / rest[0], root / rest[1]
        if dst.exists() or dst.is_symlink():
            if src.exists():
                raise DockyardError(f"cannot move {src}: {dst} exists already; nothing was lost")
            return  # done before
        if not src.exists():
            raise DockyardError(f"cannot move {src} to {dst}: {src} is gone")
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dst)
        fsync_dir(dst.parent)
        fsync_dir(src.parent)
    elif kind == "mkdir":
        (root / rest[0]).mkdir(mode=0o755, parents=True, exist_ok=True)
    elif kind == "write":
        (root / rest[0]).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(root / rest[0], rest[1].encode(), 0o644)
    elif kind == "init":
        layer = root / rest[0]
        for d in INIT_DIRS:
            (layer / d).mkdir(mode=0o755, parents=True, exist_ok=True)
        for f in INIT_FILES:
            (layer / f).touch(mode=0o644, exist_ok=True)
        mtab = layer / "etc" / "mtab"
        if not mtab.is_symlink():
            mtab.symlink_to("/proc/mounts")
    else:
        raise AssertionError(kind)


class Progress:
    """layers done / total on a terminal; silent otherwise."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.shown = sys.stderr.isatty() and total > 1

    def advance(self) -> None:
        self.done += 1
        if self.shown and (self.done == self.total or self.done % 50 == 0):
            width = 30
            filled = width * self.done // self.total
            bar = "#" * filled + "." * (width - filled)
            print(f"\rmigrating [{bar}] {self.done:,}/{self.total:,}", end="", file=sys.stderr)

    def close(self) -> None:
        if self.shown:
            print(file=sys.stderr)
