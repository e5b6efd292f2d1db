"""migration: a legacy `<root>/graph` (one directory per image, its files under `layer/`) moved
into the chosen driver's layout, as Docker's aufs migration did; into vfs, each layer becomes
the whole snapshot Docker's vfs driver keeps (see `vfs_snapshot`).

Nothing is deleted: into aufs every move is a rename on the same filesystem; into vfs each
snapshot shares its data where the filesystem can, and the legacy diff is renamed aside.
Before the first step the whole list of steps is written to a journal under the root and
fsynced; each step is idempotent and recorded when done, so a migration killed at any point
is finished by the next run with the same result.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dockyard.change import Action, Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.directories import modern_root
from dockyard.reconcilers.storage import StorageObserved, chosen
from dockyard.spec import Spec
from dockyard.state import gojson, tagfile
from dockyard.state.host import Host
from dockyard.state.safepath import Kind, Tree, Unsafe

JOURNAL = ".dockyard-migration.journal"
PROGRESS = ".dockyard-migration.progress"
MIGRATES_INTO = ("aufs", "vfs")
HOME = {"aufs": "aufs/diff", "vfs": "vfs/dir"}
# An image or container id as it may appear in a path: one plain name.
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
JSON_LIMIT = 16 << 20
MAX_DEPTH = 127  # the most layers Docker 1.x's aufs driver would stack
STEP_ARITY = {"rename": 2, "mkdir": 1, "write": 2, "init": 1, "snapshot": 3, "driver": 2}
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
    # Every id under graph/ and containers/ (their metadata stays when the layers move):
    # the only ids a journal may name.
    graph_ids: tuple[str, ...] = ()
    container_ids: tuple[str, ...] = ()
    journal_aside: str = ""  # where a rejected journal goes: the first free name


@dataclass(frozen=True)
class Step:
    """One idempotent action: ("rename", src, dst), ("mkdir", dir), ("write", file, text),
    ("init", dir), ("snapshot", dir, parent snapshot or "", diff or "init"). Paths are
    relative to the root."""

    args: tuple[str, ...]

    @property
    def kind(self) -> str:
        return self.args[0]


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID.fullmatch(value) is not None and ".." not in value


def _read(tree: Tree, rel: str) -> tuple[bytes | None, str | None]:
    """A metadata file's bytes, or what is wrong with it. Not a regular file is `Unsafe`."""
    try:
        raw = tree.read(rel, JSON_LIMIT)
    except Unsafe:
        raise
    except (OSError, DockyardError) as e:
        return None, str(e)
    return (raw, None) if raw is not None else (None, "missing")


def _load_json(
    tree: Tree, rel: str, decode: Callable[[bytes], Any] = json.loads
) -> tuple[Any, str | None]:
    """A JSON file's document (by `decode`: Go's rules for Docker's files), or what is wrong."""
    raw, error = _read(tree, rel)
    if raw is None:
        return None, error
    try:
        return decode(raw), None
    except (ValueError, RecursionError) as e:
        return None, f"not valid JSON ({e.__class__.__name__}: {e})"


def _subdirs(tree: Tree, rel: str) -> list[str]:
    """The directories in `rel`; regular files there are not Docker's and are passed over,
    anything else (a symlink, a FIFO) is `Unsafe`."""
    out = []
    for name in tree.listdir(rel) or ():
        kind = tree.stat(f"{rel}/{name}").kind
        if kind == "directory":
            out.append(name)
        elif kind != "file":
            tree.expect(f"{rel}/{name}", "directory")
    return out


def _reference(meta: Any, key: str, what: str) -> tuple[str | None, str | None]:
    """(id, error) of `meta[key]`, an id that must be a plain name: the field as Go's decoder
    filled it (a key in any case, the last non-null one)."""
    members = gojson.members(meta)
    if members is None:
        return None, "not a JSON object"
    value = ([v for v in gojson.field(members, key) if v is not None] or [None])[-1]
    if value in (None, ""):
        return None, None
    if not is_id(value):
        return None, f"its {what} {str(value)[:80]!r} is not an id"
    return str(value), None


def _legacy(
    tree: Tree, where: str, names: list[str], sub: str, meta: str, key: str, what: str
) -> list[tuple[str, str | None, str | None]]:
    """(id, what it refers to, what is wrong) for each `<where>/<id>` that has a `sub`
    directory to migrate; `meta` is its JSON, whose `key` names a parent or an image."""
    out: list[tuple[str, str | None, str | None]] = []
    for name in names:
        if tree.expect(f"{where}/{name}/{sub}", "directory").kind == "missing":
            continue
        if not is_id(name):
            out.append((name, None, f"not {what} id"))
            continue
        # Docker read an image's json with json.Unmarshal, a container's with a decoder.
        decode = gojson.decode_first if meta == "config.json" else gojson.unmarshal
        doc, error = _load_json(tree, f"{where}/{name}/{meta}", decode)
        ref, bad = (None, None) if error else _reference(doc, key, key.lower())
        problem = error or bad
        out.append((name, ref, problem and f"{meta}: {problem}"))
    return out


def _images(tree: Tree, names: list[str]) -> list[Image]:
    return [Image(*e) for e in _legacy(tree, "graph", names, "layer", "json", "parent", "an image")]


def _containers(tree: Tree, names: list[str]) -> list[Container]:
    found = _legacy(tree, "containers", names, "rw", "config.json", "Image", "a container")
    return [Container(*e) for e in found]


def chain(image: str, parents: dict[str, str | None]) -> list[str]:
    """`image` and its ancestors, nearest first; only for an image `unusable` passes."""
    out = [image]
    while parents.get(out[-1]):
        out.append(str(parents[out[-1]]))
    return out


def unusable(
    image: str, parents: dict[str, str | None], known: dict[str, str | None] | None = None
) -> str | None:
    """Why `image` cannot be migrated (a missing ancestor, a loop, a chain deeper than Docker
    ever made), or None. `known` remembers the verdicts of ancestors across calls."""
    known = {} if known is None else known
    path: list[str] = []
    on_path: set[str] = set()
    current: str | None = image
    verdict: str | None = None
    while current is not None and current not in known:
        if current in on_path:
            loop = " -> ".join([*path[path.index(current) :], current])
            verdict = f"its parents form a loop ({loop})"
            break
        if current not in parents:
            verdict = f"its parent {current} is missing"
            break
        if len(path) >= MAX_DEPTH:
            verdict = f"its chain of parents is deeper than Docker's {MAX_DEPTH} layers"
            break
        path.append(current)
        on_path.add(current)
        current = parents[current]
    else:
        verdict = known.get(current) if current is not None else None
    for layer in path:
        known[layer] = verdict
    return verdict


def plan_steps(driver: str, obs: MigrationObserved) -> tuple[list[Step], list[str]]:
    """Pure: the steps of the migration into `driver`, and the layers left in place (why)."""
    parents = {i.id: i.parent for i in obs.images if i.error is None}
    known: dict[str, str | None] = {}
    why_not = {image: unusable(image, parents, known) for image in parents}
    left: list[str] = []
    steps: list[Step] = []
    if obs.repositories == "ok":
        steps.append(Step(("rename", "repositories", f"repositories-{driver}")))
    done: set[str] = set()
    for image in obs.images:
        if image.error:
            left.append(f"graph/{image.id}: {image.error}; left in place")
            continue
        problem = why_not[image.id]
        if problem:
            left.append(f"graph/{image.id}: {problem}; left in place")
            continue
        for layer in reversed(chain(image.id, parents)):  # parents first
            if layer not in done:
                done.add(layer)
                ancestors = chain(layer, parents)[1:]
                steps.extend(_layer(driver, f"graph/{layer}/layer", layer, ancestors))
    for c in obs.containers:
        blocked = c.image is None or c.image not in parents or why_not[c.image]
        if c.error or blocked:
            why = c.error or f"its image {c.image} cannot be migrated"
            left.append(f"containers/{c.id}/rw: {why}; left in place")
            continue
        image_chain = chain(str(c.image), parents)
        init = f"{c.id}-init"
        steps.extend(_layer(driver, None, init, image_chain))
        steps.extend(_layer(driver, f"containers/{c.id}/rw", c.id, [init, *image_chain]))
        if driver != "aufs":  # Docker 1.x loads a container without a Driver only under aufs
            steps.append(Step(("driver", f"containers/{c.id}/config.json", driver)))
    return steps, left


def _layer(driver: str, source: str | None, layer: str, ancestors: list[str]) -> list[Step]:
    from dockyard.reconcilers import vfs_snapshot  # only when migrating

    home = f"{HOME[driver]}/{layer}"
    if driver == "vfs":
        parent = f"{HOME[driver]}/{ancestors[0]}" if ancestors else ""
        return [Step(("snapshot", home, parent, source or vfs_snapshot.INIT))]
    parents = "".join(f"{a}\n" for a in ancestors)
    return [
        Step(("rename", source, home)) if source else Step(("init", home)),
        Step(("mkdir", f"aufs/mnt/{layer}")),
        Step(("write", f"aufs/layers/{layer}", parents)),
    ]


def journal_problem(obs: MigrationObserved) -> str | None:
    """Pure: why the journal found may not be carried out. It may hold only the steps
    dockyard plans, naming only ids that are under graph/ and containers/."""
    images, containers = set(obs.graph_ids), set(obs.container_ids)
    layers = images | containers | {f"{c}-init" for c in containers}
    for n, args in enumerate(obs.journal, 1):
        problem = _step_problem(args, images, containers, layers)
        if problem:
            return f"step {n} {list(args)!r}: {problem}"
    return None


def _in(path: str, prefix: str, allowed: set[str]) -> str | None:
    """The id in `path` = `prefix` + id, when it is one of `allowed`."""
    rest = path.removeprefix(prefix)
    return rest if path.startswith(prefix) and rest in allowed else None


def _step_problem(
    args: tuple[str, ...], images: set[str], containers: set[str], layers: set[str]
) -> str | None:
    kind, *rest = args
    if STEP_ARITY.get(kind) != len(rest):
        return "not a step kind dockyard knows, or not its arguments"
    # Into vfs every layer is a snapshot step; a move or an init layer there is a journal of
    # the earlier dockyard that left diffs as vfs layers (broken images): never carried out.
    home = f"{HOME['aufs']}/"
    if kind == "rename":
        src, dst = rest
        if src == "repositories" and dst in {f"repositories-{d}" for d in MIGRATES_INTO}:
            return None
        layer = _in(dst, home, layers)
        if layer and src in (f"graph/{layer}/layer", f"containers/{layer}/rw"):
            return None
        return "not a move dockyard plans (from graph/<id>/layer or containers/<id>/rw)"
    if kind == "mkdir":
        return None if _in(rest[0], "aufs/mnt/", layers) else "not a directory dockyard makes"
    if kind == "write":
        named = rest[1].split("\n")
        if _in(rest[0], "aufs/layers/", layers) and named[-1] == "" and set(named[:-1]) <= layers:
            return None
        return "not a parent list dockyard writes"
    inits = {f"{c}-init" for c in containers}
    if kind == "driver":
        path, driver = rest
        container = path.removesuffix("/config.json")
        if path.endswith("/config.json") and _in(container, "containers/", containers):
            return None if driver == "vfs" else "not a driver dockyard records"
        return "not a container's config.json"
    if kind == "snapshot":
        return _snapshot_problem(rest, images, containers, layers)
    if _in(rest[0], home, inits):
        return None
    return "not an init layer dockyard makes"


def _snapshot_problem(
    args: list[str], images: set[str], containers: set[str], layers: set[str]
) -> str | None:
    from dockyard.reconcilers import vfs_snapshot  # only when migrating

    dst, parent, source = args
    home = f"{HOME['vfs']}/"
    layer = _in(dst, home, layers)
    if layer is None:
        return "not a vfs layer dockyard makes"
    if parent and (_in(parent, home, layers) is None or parent == dst):
        return "not a parent snapshot dockyard makes"
    sources = {f"graph/{layer}/layer"} if layer in images else set()
    if layer in containers:
        sources.add(f"containers/{layer}/rw")
    if layer.endswith("-init") and layer.removesuffix("-init") in containers:
        sources.add(vfs_snapshot.INIT)
    return None if source in sources else "not a layer dockyard snapshots"


def _read_journal(tree: Tree) -> tuple[tuple[tuple[str, ...], ...], str | None]:
    doc, error = _load_json(tree, JOURNAL)
    if error == "missing":
        return (), None
    if error:
        return (), error
    steps = doc.get("steps") if isinstance(doc, dict) else None
    if not isinstance(steps, list) or not all(
        isinstance(s, list) and s and all(isinstance(a, str) for a in s) for s in steps
    ):
        return (), "not a list of steps, each a list of names"
    return tuple(tuple(s) for s in steps), None


def _describe(step: Step) -> tuple[str, str, dict[str, Any]]:
    """How a step reads in the plan; the change carries all apply needs to redo the step."""
    kind, *rest = step.args
    if kind == "rename":
        return "move", rest[0], {"path": rest[1]}
    if kind == "write":
        return "file", rest[0], {"content": rest[1]}
    if kind == "init":
        return "init layer", rest[0], {}
    if kind == "snapshot":
        return "snapshot", rest[0], {"parent": rest[1], "from": rest[2]}
    if kind == "driver":
        return "container driver", rest[0], {"driver": rest[1]}
    return "directory", rest[0], {}


def _step_of(change: Change) -> tuple[int, Step]:
    after = change.after or {}
    kinds = {
        "move": "rename",
        "file": "write",
        "init layer": "init",
        "directory": "mkdir",
        "snapshot": "snapshot",
        "container driver": "driver",
    }
    kind = kinds[change.kind]
    extra: tuple[str, ...] = ()
    if kind == "rename":
        extra = (after["path"],)
    elif kind == "write":
        extra = (after["content"],)
    elif kind == "snapshot":
        extra = (after["parent"], after["from"])
    elif kind == "driver":
        extra = (after["driver"],)
    return int(after["step"]) - 1, Step((kind, change.name, *extra))


def _free(tree: Tree, prefix: str) -> str:
    """The first `prefix`N name not taken in the root."""
    taken = set(tree.listdir("") or ())
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


class Migration:
    name: ClassVar[str] = "migration"
    after: ClassVar[tuple[str, ...]] = ("storage",)
    observation: ClassVar[type] = MigrationObserved

    def observe(self, spec: Spec, host: Host) -> MigrationObserved:
        tree = host.fs
        journal, journal_error = _read_journal(tree)
        raw, repo_error = _read(tree, "repositories")
        repo_error = repo_error or tagfile.problem(raw or b"")
        # graph/ or containers/ that is not a directory: `directories` reports it, and stops apply.
        graph, containers = (
            _subdirs(tree, d) if tree.stat(d).kind == "directory" else []
            for d in ("graph", "containers")
        )
        return MigrationObserved(
            str(host.root),
            tuple(_images(tree, graph)),
            tuple(_containers(tree, containers)),
            "ok" if repo_error is None else ("absent" if repo_error == "missing" else repo_error),
            journal,
            journal_error,
            tuple(graph),
            tuple(containers),
            _free(tree, f"{JOURNAL}.rejected-") if journal or journal_error else "",
        )

    def _rejected(self, obs: MigrationObserved) -> str | None:
        """Why the journal found is not carried out, or None when it is sound (or absent)."""
        return obs.journal_error or journal_problem(obs)

    def _steps(self, spec: Spec, seen: Seen) -> tuple[list[Step], list[str], str | None]:
        obs = seen[MigrationObserved]
        if obs.journal and self._rejected(obs) is None:
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
        if modern_root(seen):
            return []  # a current dockerd's root: observed only
        obs = seen[MigrationObserved]
        changes = []
        if self._rejected(obs):
            path = f"{obs.root}/{JOURNAL}"
            aside = f"{obs.root}/{obs.journal_aside}"
            reason = "not a journal dockyard wrote: moved aside, never carried out"
            move = ({"path": path}, {"path": aside})
            changes.append(Change(self.name, "journal", path, "update", *move, reason))
        steps, _, error = self._steps(spec, seen)
        if error or obs.repositories not in ("ok", "absent"):
            return changes
        resumed = bool(obs.journal) and not self._rejected(obs)
        reason = "finish the interrupted migration" if resumed else "legacy graph"
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
        if modern_root(seen):
            return []  # a current dockerd's root: observed only
        obs = seen[MigrationObserved]
        notes = []
        rejected = self._rejected(obs)
        if rejected:
            notes.append(
                Note(
                    self.name,
                    "warning",
                    f"{obs.root}/{JOURNAL} is rejected ({rejected}): it is moved aside to "
                    f"{obs.root}/{obs.journal_aside} and never carried out; the migration is "
                    "planned from what is on disk",
                )
            )
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
        if obs.journal and not rejected and steps:
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
        tree = host.fs
        for change in changes:
            if change.kind == "journal":
                _set_aside(tree, host.root, change)
        numbered = sorted(_step_of(c) for c in changes if c.kind != "journal")
        if numbered:
            run(tree, [step for _, step in numbered], host.environ.get(CRASH_AFTER))


def moves_tags(spec: Spec, seen: Seen) -> bool:
    """Pure: whether this run's migration brings the legacy `repositories` into the driver's
    tag store (which then must not be created empty)."""
    steps, _, error = Migration()._steps(spec, seen)
    return error is None and any(s.args[:2] == ("rename", "repositories") for s in steps)


def _set_aside(tree: Tree, root: Path, change: Change) -> None:
    """Move a rejected journal (and its progress record) aside, or back for the undo."""
    src = str(Path((change.before or {})["path"]).relative_to(root))
    dst = str(Path((change.after or {})["path"]).relative_to(root))
    tree.rename(src, dst)
    progress = (PROGRESS, dst.replace(JOURNAL, PROGRESS))
    if src != JOURNAL:
        progress = (progress[1], progress[0])
    if tree.stat(progress[0]).kind != "missing":
        tree.rename(*progress)


def run(tree: Tree, steps: list[Step], crash_after: str | None = None) -> None:
    """Journal the steps, carry them out, record each, and drop the journal when all are done.
    A journal already there is an interrupted run of these same steps: it is finished. vfs
    snapshots that cannot fit are refused first, with nothing changed."""
    from dockyard.reconcilers import vfs_snapshot  # only when migrating

    resumed = tree.stat(JOURNAL).kind != "missing"
    # Without a journal, a record of steps done is stale: it is set aside below.
    done = {i for i in _done(tree) if i < len(steps)} if resumed else set()
    pending = [
        (s.args[1], s.args[2], s.args[3])
        for i, s in enumerate(steps)
        if s.kind == "snapshot" and i not in done
    ]
    vfs_snapshot.check_space(tree, pending, HOME["vfs"])
    payload = json.dumps({"steps": [s.args for s in steps]}).encode()
    if tree.write(JOURNAL, payload, 0o600, replace=False) and (
        tree.stat(PROGRESS).kind != "missing"
    ):
        # A record of steps done without their journal belongs to no migration of this run's:
        # it is set aside, never trusted to skip a step.
        tree.rename(PROGRESS, _free(tree, f"{PROGRESS}.stale-"))
    crash = Crash(int(crash_after) if crash_after else None)
    bar = Progress(len(steps))
    for index, step in enumerate(steps):
        if index not in done:
            _carry_out(tree, step, crash.tick)
            crash.tick()
            tree.append(PROGRESS, f"{index}\n".encode())
            crash.tick()
        bar.advance()
    bar.close()
    tree.unlink(JOURNAL)
    tree.unlink(PROGRESS)


class Crash:
    """For tests of crash safety only: SIGKILL at the `limit`-th event (a step done, a step
    recorded, an entry of a vfs snapshot made)."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.events = limit, 0

    def tick(self) -> None:
        self.events += 1
        if self.limit is not None and self.events >= self.limit:
            os.kill(os.getpid(), signal.SIGKILL)


def _done(tree: Tree) -> set[int]:
    raw = tree.read(PROGRESS) or b""
    return {int(line) for line in raw.decode(errors="replace").split() if line.isdigit()}


def _carry_out(tree: Tree, step: Step, tick: Callable[[], None]) -> None:
    from dockyard.reconcilers import vfs_snapshot  # only when migrating

    kind, *rest = step.args
    if kind == "snapshot":
        dst, parent, source = rest
        vfs_snapshot.materialise(tree, dst, parent, source, tick)
    elif kind == "rename":
        src, dst = rest
        expected: Kind = "file" if src == "repositories" else "directory"
        src_there = tree.expect(src, expected).kind != "missing"
        if tree.expect(dst, expected).kind != "missing":
            if src_there:
                raise DockyardError(
                    f"cannot move {tree.path(src)}: {tree.path(dst)} exists already; "
                    "nothing was lost"
                )
            return  # done before
        if not src_there:
            raise DockyardError(f"cannot move {tree.path(src)} to {tree.path(dst)}: it is gone")
        tree.makedirs(dst.rpartition("/")[0], 0o755)
        tree.rename(src, dst)
    elif kind == "driver":
        _record_driver(tree, *rest)
    elif kind == "mkdir":
        tree.makedirs(rest[0], 0o755)
    elif kind == "write":
        tree.makedirs(rest[0].rpartition("/")[0], 0o755)
        tree.write(rest[0], rest[1].encode(), 0o644)
    elif kind == "init":
        vfs_snapshot.init_entries(tree, rest[0])
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


def with_driver(raw: bytes, driver: str) -> bytes:
    """Pure: config.json naming `driver` as the container's graph driver, every other byte as
    it was. The member goes last in the first object, where Go's decoder (a later key wins,
    in any case) reads it over an empty `"driver"` found before."""
    text = raw.decode(errors="surrogateescape")  # every byte back as it was
    value, end = gojson.first_value(text)
    found = gojson.members(value)
    if found is None:
        raise ValueError("not a JSON object")
    if gojson.field(found, "Driver")[-1:] == [driver]:
        return raw
    member = json.dumps({"Driver": driver}, separators=(",", ":"))[1:-1]
    comma = "," if found else ""
    return (text[: end - 1] + comma + member + text[end - 1 :]).encode(errors="surrogateescape")


def _record_driver(tree: Tree, rel: str, driver: str) -> None:
    """Write the driver into a migrated container's config.json (atomically, same mode and
    owner), as Docker 1.x recorded it for each container it made."""
    entry = tree.expect(rel, "file")
    raw = tree.read(rel, JSON_LIMIT)
    if raw is None or entry.kind == "missing":
        raise DockyardError(f"cannot record the driver in {tree.path(rel)}: it is gone")
    try:
        new = with_driver(raw, driver)
    except (ValueError, RecursionError) as e:
        raise DockyardError(f"cannot record the driver in {tree.path(rel)}: {e}") from None
    if new != raw:
        tree.write(rel, new, entry.mode, f"{entry.uid}:{entry.gid}")
