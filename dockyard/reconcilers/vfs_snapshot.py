"""vfs snapshots: Docker's vfs driver keeps every layer as a whole filesystem. A child's
directory holds its parents' files too: Docker made it by copying the parent's directory
(`cp -aT --reflink=auto`) and applying the layer's diff on top (`archive.ApplyLayer`). A
legacy graph holds each layer's own files only, as aufs branches: `.wh.<name>` whiteouts,
`.wh..wh..opq` opaque directories, and aufs's own `.wh..wh.*` entries. A snapshot is made
from the parent's snapshot and the layer's diff as the aufs mount showed them:

- a name whited out by `.wh.<name>` is not taken from below; `.wh..wh..opq` in a directory
  takes nothing of that directory from below (Docker's ApplyLayer honours it from 1.9,
  moby#16470; aufs always did);
- the layer's entry wins over the one below, except that two directories merge (the
  layer's owner, mode and times);
- `.wh.` names are never materialised; aufs's own `.wh..wh.*` (`.wh..wh.aufs`, `.wh..wh.plnk`,
  `.wh..wh.orph`) are left out, as ApplyLayer left them.

Data is shared where the filesystem can: a reflink (FICLONE), else, for image and init
layers only, a hard link, else a copy. The snapshot is made under a private name beside its
final one and renamed into place when whole, after the legacy diff has been renamed aside
(`graph/<id>/layer-legacy`, `containers/<id>/rw-legacy`: nothing is deleted). Every entry is
made whole before it gets its name, and one already there is kept, so a snapshot killed part
way is finished, not restarted, by the next run.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dockyard.errors import DockyardError
from dockyard.state.safepath import Dir, Node, Sharing, Tree, Unsafe, describe

WHITEOUT = ".wh."
AUFS_META = ".wh..wh."
OPAQUE = ".wh..wh..opq"
INIT = "init"  # the source of a container's init layer: no diff, Docker's init entries
MAX_NESTING = 200  # directories inside directories: three descriptors each are held open
LEGACY_SUFFIX = "-legacy"
# What Docker's setupInitLayer makes in a container's init layer, and the mode of its files.
INIT_DIRS = ("dev/pts", "dev/shm", "proc", "sys", "etc")
INIT_FILES = (
    ".dockerinit",
    ".dockerenv",
    "etc/resolv.conf",
    "etc/hosts",
    "etc/hostname",
    "dev/console",
)
INIT_FILE_MODE = 0o755  # os.OpenFile(..., O_CREATE, 0755) in Docker 1.x's setupInitLayer
MTAB = ("etc/mtab", "/proc/mounts")


def _prefixes(path: str) -> list[str]:
    names = path.split("/")
    return ["/".join(names[: i + 1]) for i in range(len(names))]


# Docker unlinks every component of each init path before making it: a file, symlink or
# device found there in the image is not carried into the init layer (a directory is).
INIT_REPLACES = frozenset(p for path in (*INIT_DIRS, *INIT_FILES, MTAB[0]) for p in _prefixes(path))


# -- what a snapshot directory holds (pure) -----------------------------------------------


@dataclass(frozen=True)
class View:
    """A directory of a layer's diff: its own entries, the names its whiteouts remove from
    below, and whether it is opaque."""

    own: Mapping[str, Node]
    hidden: frozenset[str]
    opaque: bool


def view(entries: Sequence[Node]) -> View:
    own: dict[str, Node] = {}
    hidden: set[str] = set()
    opaque = False
    for node in entries:
        if node.name.startswith(AUFS_META):
            opaque = opaque or node.name == OPAQUE
        elif node.name.startswith(WHITEOUT):
            hidden.add(node.name.removeprefix(WHITEOUT))
        else:
            own[node.name] = node
    return View(own, frozenset(hidden), opaque)


@dataclass(frozen=True)
class Pick:
    """One entry of a snapshot directory: the node it copies, whether it is the layer's own,
    and the directory below it merges with (a directory of the layer over one below)."""

    node: Node
    own: bool
    below: Node | None = None


def merged(layer: View, lower: Sequence[Node]) -> list[Pick]:
    """The entries of a snapshot directory, by name: the layer's over what is below."""
    below = {} if layer.opaque else {n.name: n for n in lower if n.name not in layer.hidden}
    picks = []
    for name in sorted(set(layer.own) | set(below)):
        mine, theirs = layer.own.get(name), below.get(name)
        if mine is None:
            assert theirs is not None
            picks.append(Pick(theirs, False))
        elif mine.kind == "directory" and theirs is not None and theirs.kind == "directory":
            picks.append(Pick(mine, True, theirs))
        else:
            picks.append(Pick(mine, True))
    return picks


# -- making one snapshot on disk ----------------------------------------------------------


@dataclass
class Made:
    """What a snapshot took: entries by how their data was shared."""

    reflink: int = 0
    link: int = 0
    copy: int = 0
    copied_bytes: int = 0
    dirs: int = 0
    others: int = 0

    def count(self, how: str, node: Node) -> None:
        setattr(self, how, getattr(self, how) + 1)
        if how == "copy":
            self.copied_bytes += node.size


@dataclass
class Builder:
    """Fills a snapshot directory from a layer's diff over its parent's snapshot. `link`:
    hard links are allowed (an image or init layer, never written again). `tick` is called
    once per entry made (the crash tests stop the process there)."""

    tree: Tree
    staging: str
    link: bool
    tick: Callable[[], None]
    replaces: frozenset[str] = frozenset()
    sharing: Sharing = field(default_factory=Sharing)
    made: Made = field(default_factory=Made)
    # A file with several names: where its copy in this snapshot got its first one.
    first_names: dict[tuple[int, int], str] = field(default_factory=dict)

    def fill(self, dst: Dir, own: Dir | None, lower: Dir | None, rel: str = "") -> None:
        if rel.count("/") >= MAX_NESTING:
            raise DockyardError(
                f"{dst.path}: directories nested deeper than {MAX_NESTING}; not migrated"
            )
        layer = view(own.scan() if own else [])
        below = lower.scan() if lower is not None and not layer.opaque else []
        present = {n.name: n for n in dst.scan()}
        for pick in merged(layer, below):
            path = f"{rel}/{pick.node.name}" if rel else pick.node.name
            if not pick.own and pick.node.kind != "directory" and path in self.replaces:
                continue
            source = own if pick.own else lower
            assert source is not None
            self.put(dst, source, lower, pick, present.get(pick.node.name), path)

    def put(
        self, dst: Dir, source: Dir, lower: Dir | None, pick: Pick, there: Node | None, path: str
    ) -> None:
        node = pick.node
        if there is not None and there.kind != node.kind:
            raise Unsafe(dst.path / node.name, describe(there), f"a {node.kind}")
        if node.kind == "directory":
            self._directory(dst, source, lower, pick, there, path)
        elif node.kind == "file":
            self._file(dst, source, node, there, path)
        elif node.kind == "symlink":
            dst.put_symlink(node.name, node)
            self.made.others += 1
        else:
            dst.put_special(node.name, node)
            self.made.others += 1
        self.tick()

    def _directory(
        self, dst: Dir, source: Dir, lower: Dir | None, pick: Pick, there: Node | None, path: str
    ) -> None:
        name = pick.node.name
        if there is None:
            dst.make_dir(name)
        with contextlib.ExitStack() as stack:
            made = stack.enter_context(dst.child(name))
            src = stack.enter_context(source.child(name))
            below = None
            if pick.below is not None and lower is not None:
                below = stack.enter_context(lower.child(name))
            if pick.own:
                self.fill(made, src, below, path)
            else:
                self.fill(made, None, src, path)
            made.set_meta(pick.node, src.xattrs())
        self.made.dirs += 1

    def _file(self, dst: Dir, source: Dir, node: Node, there: Node | None, path: str) -> None:
        shared = node.nlink > 1
        if there is not None:  # made by an interrupted run of this same step
            if shared and there.inode != node.inode:
                self.first_names.setdefault(node.inode, path)
            return
        first = self.first_names.get(node.inode) if shared else None
        if first is not None:
            parent, _, base = first.rpartition("/")
            with self.tree.open_dir(f"{self.staging}/{parent}".rstrip("/")) as d:
                found = d.lookup(base)
                if found is None or found.kind != "file":
                    raise Unsafe(d.path / base, "gone" if found is None else describe(found))
                dst.link_to(node.name, d, found)
            self.made.link += 1
            return
        how = dst.put_file(node.name, source, node, self.link, self.sharing)
        self.made.count(how, node)
        if shared and how != "link":
            self.first_names[node.inode] = path


def legacy_home(source: str) -> str:
    """Where a legacy diff is kept once its snapshot is made: beside where it was."""
    return f"{source}{LEGACY_SUFFIX}"


def staging_of(dst: str) -> str:
    home, _, layer = dst.rpartition("/")
    return f"{home}/.dockyard-partial-{layer}"


def materialise(
    tree: Tree, dst: str, parent: str, source: str, tick: Callable[[], None]
) -> Made | None:
    """Make snapshot `dst` (under the root) of layer diff `source` (or Docker's init layer)
    over snapshot `parent` ("" for a base layer). Idempotent: a snapshot already there is
    kept (None), one interrupted part way is finished. The legacy diff is renamed aside
    before the snapshot gets its name, so `dst` and `source` never both exist by dockyard's
    doing: when they do, something else made `dst`, and nothing is touched."""
    staging = staging_of(dst)
    has_source = source != INIT and tree.expect(source, "directory").kind != "missing"
    if tree.expect(dst, "directory").kind != "missing":
        if has_source:
            raise DockyardError(
                f"cannot migrate {tree.path(source)}: {tree.path(dst)} exists already; "
                "nothing was moved"
            )
        return None
    staged = tree.expect(staging, "directory").kind != "missing"
    kept = source != INIT and tree.expect(legacy_home(source), "directory").kind != "missing"
    if source != INIT and not has_source and not (staged and kept):
        raise DockyardError(f"cannot migrate {tree.path(source)} to {tree.path(dst)}: it is gone")
    if not staged:
        tree.makedirs(staging.rpartition("/")[0], 0o755)
        tree.mkdir(staging, 0o700)
    made = None
    if source == INIT or has_source:
        builder = Builder(tree, staging, link=not source.startswith("containers/"), tick=tick)
        if source == INIT:
            builder.replaces = INIT_REPLACES
        _build(builder, staging, parent, "" if source == INIT else source)
        if source == INIT:
            init_entries(tree, staging)
        tree.sync(staging)
        made = builder.made
        if source != INIT:
            tree.rename(source, legacy_home(source))
    tree.rename(staging, dst)
    return made


def _build(builder: Builder, staging: str, parent: str, source: str) -> None:
    tree = builder.tree
    with contextlib.ExitStack() as stack:
        made = stack.enter_context(tree.open_dir(staging))
        own = stack.enter_context(tree.open_dir(source)) if source else None
        lower = stack.enter_context(tree.open_dir(parent)) if parent else None
        builder.fill(made, own, lower)
        top = own or lower
        if top is not None:  # the root of the layer's own diff, else the image's
            made.set_meta(top.node(), top.xattrs())


def init_entries(tree: Tree, layer: str) -> None:
    """Docker's init layer on top of the image: what setupInitLayer makes, where the image
    has nothing (or had a non-directory, left out by `INIT_REPLACES`)."""
    for d in INIT_DIRS:
        tree.makedirs(f"{layer}/{d}", 0o755)
    for f in INIT_FILES:
        if tree.stat(f"{layer}/{f}").kind == "missing":
            tree.write(f"{layer}/{f}", b"", INIT_FILE_MODE, replace=False)
    if tree.stat(f"{layer}/{MTAB[0]}").kind == "missing":
        tree.symlink(f"{layer}/{MTAB[0]}", MTAB[1])


# -- space: refuse before the first copy when it cannot fit ---------------------------------


@dataclass
class Usage:
    """What a tree holds: bytes of regular files (each inode once, rounded up to blocks),
    regular files, directories, other entries."""

    data: int = 0
    files: int = 0
    dirs: int = 0
    others: int = 0
    sample: str = ""  # a regular file in it (to try a reflink with)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.data + other.data,
            self.files + other.files,
            self.dirs + other.dirs,
            self.others + other.others,
            self.sample or other.sample,
        )

    @property
    def inodes(self) -> int:
        return self.files + self.dirs + self.others


def usage(tree: Tree, rel: str, block: int) -> Usage:
    total = Usage(dirs=1)
    seen: set[tuple[int, int]] = set()
    with tree.open_dir(rel) as top:
        _usage(top, rel, block, total, seen)
    return total


def _usage(d: Dir, rel: str, block: int, total: Usage, seen: set[tuple[int, int]]) -> None:
    if rel.count("/") > MAX_NESTING + 8:
        raise DockyardError(f"{d.path}: directories nested deeper than {MAX_NESTING}")
    for node in d.scan():
        if node.kind == "directory":
            total.dirs += 1
            with d.child(node.name) as sub:
                _usage(sub, f"{rel}/{node.name}", block, total, seen)
        elif node.kind == "file":
            total.sample = total.sample or f"{rel}/{node.name}"
            if node.inode not in seen:
                seen.add(node.inode)
                total.files += 1
                total.data += math.ceil(node.size / block) * block
        else:
            total.others += 1


@dataclass(frozen=True)
class Need:
    bytes: int
    inodes: int
    how: str  # how the data is shared, as the message says it


def need(tree: Tree, pending: Sequence[tuple[str, str, str]], home: str) -> Need:
    """An upper bound of what the pending snapshots (dst, parent, source) take in `home`:
    a snapshot holds at most its parent's snapshot and its own diff (whiteouts and files a
    layer replaces are counted as if they stayed). A block per directory; file data only
    where it is copied."""
    fs = tree.statvfs(home)
    block = fs.f_frsize or 4096
    planned = {dst: (parent, source) for dst, parent, source in pending}
    sizes: dict[str, Usage] = {}
    diffs: dict[str, Usage] = {}

    def diff(source: str) -> Usage:
        if source not in diffs:  # a diff already renamed aside is in its staged snapshot
            gone = source == INIT or tree.expect(source, "directory").kind == "missing"
            diffs[source] = Usage() if gone else usage(tree, source, block)
        return diffs[source]

    def size(layer: str) -> Usage:
        if layer not in sizes:
            if tree.expect(layer, "directory").kind == "directory":
                sizes[layer] = usage(tree, layer, block)
            elif layer in planned:
                parent, source = planned[layer]
                sizes[layer] = (size(parent) if parent else Usage()) + diff(source)
            else:
                sizes[layer] = Usage()
        return sizes[layer]

    device = tree.stat(home).dev
    parts: list[tuple[Usage, int, bool]] = []  # (what, on which filesystem, may be linked)
    for dst, parent, source in pending:
        if tree.expect(dst, "directory").kind != "missing":
            continue  # made already (killed before its step was recorded)
        may_link = not source.startswith("containers/")
        parts.append((size(parent) if parent else Usage(), device, may_link))
        if source != INIT and tree.expect(source, "directory").kind != "missing":
            parts.append((diff(source), tree.stat(source).dev, may_link))
    sample = next((u.sample for u, _, _ in parts if u.sample), "")
    same = all(dev == device for _, dev, _ in parts)
    reflink = bool(sample) and same and tree.can_reflink(sample, home)
    total_bytes = inodes = 0
    for part, dev, may_link in parts:
        linked = may_link and dev == device
        total_bytes += part.dirs * block
        if reflink:
            inodes += part.inodes
        elif linked:
            inodes += part.dirs + part.others
        else:
            total_bytes += part.data
            inodes += part.inodes
    how = (
        "data shared by reflink"
        if reflink
        else "hard links for image layers, copies for containers and across filesystems"
    )
    return Need(total_bytes, inodes, how)


def check_space(tree: Tree, pending: Sequence[tuple[str, str, str]], home: str) -> None:
    """Refuse, before anything is made, snapshots that cannot fit in `home`."""
    if not pending:
        return
    wanted = need(tree, pending, home)
    fs = tree.statvfs(home)
    free = fs.f_bavail * fs.f_frsize
    free_inodes = fs.f_favail if fs.f_files else None
    short_inodes = free_inodes is not None and wanted.inodes > free_inodes
    if wanted.bytes <= free and not short_inodes:
        return
    inodes = f" and {wanted.inodes:,} inodes ({free_inodes:,} free)" if short_inodes else ""
    raise DockyardError(
        f"not enough space in {tree.path(home)} for {len(pending)} vfs snapshot(s) "
        f"({wanted.how}): they need up to {wanted.bytes:,} bytes, {free:,} are free"
        f"{inodes}; nothing was changed. Free space there (or put the root on a filesystem "
        "with reflinks, such as btrfs or xfs) and run again"
    )
