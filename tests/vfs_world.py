"""Legacy layer chains as aufs left them (whiteouts, opaque directories, aufs's own `.wh..wh.*`
entries, symlinks, hard links, FIFOs), written to disk, and a simple reference model of the
snapshots Docker's vfs driver would hold for them. Shared by the vfs snapshot tests: the
property-based one, the crash tests and the filesystem tests."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# One entry of a layer, by path:
#   ("file", content, mode)  ("dir", mode)  ("symlink", target)  ("fifo", mode)
#   ("link", path of a file of the same layer)  ("whiteout",)  ("opaque",)
Spec = tuple[object, ...]
Layer = dict[str, Spec]


BLOCKING = ("file", "symlink", "fifo", "link")  # nothing can be below these


def normalise(layer: Layer) -> Layer:
    """A layer that can exist as one directory tree: nothing below a non-directory, opaque
    only on a directory, a hard link only to a file of the layer."""
    out: Layer = {}
    for path in sorted(layer):
        spec = layer[path]
        above = path.split("/")[:-1]
        if any(
            out.get("/".join(above[: i + 1]), ("dir",))[0] in BLOCKING for i in range(len(above))
        ):
            continue
        out[path] = spec
    for path, spec in list(out.items()):
        if spec[0] == "link" and out.get(str(spec[1]), ("",))[0] != "file":
            out[path] = ("file", path.encode(), 0o644)
    return out


def mtime_of(path: str, layer_index: int) -> int:
    digest = hashlib.sha256(f"{layer_index}:{path}".encode()).digest()
    return (1_000_000_000 + int.from_bytes(digest[:3], "big")) * 1_000_000_000 + 123


def write_layer(top: Path, layer: Layer, index: int, aufs_meta: bool = False) -> None:
    """`layer` as an aufs branch under `top` (made here), every entry with a mtime of its own."""
    top.mkdir(parents=True)
    for path in sorted(layer):
        spec, where = layer[path], top / path
        where.parent.mkdir(parents=True, exist_ok=True)
        kind = spec[0]
        if kind in ("dir", "opaque"):
            where.mkdir(exist_ok=True)
            if kind == "opaque":
                (where / ".wh..wh..opq").write_bytes(b"")
        elif kind == "whiteout":
            (where.parent / f".wh.{where.name}").write_bytes(b"")
        elif kind == "file":
            assert isinstance(spec[1], bytes)
            where.write_bytes(spec[1])
        elif kind == "symlink":
            where.symlink_to(str(spec[1]))
        elif kind == "fifo":
            os.mkfifo(where)
    for path, spec in sorted(layer.items()):
        if spec[0] == "link":
            os.link(top / str(spec[1]), top / path)
    if aufs_meta:  # what aufs keeps in a writable branch: never part of a snapshot
        (top / ".wh..wh.aufs").write_bytes(b"")
        (top / ".wh..wh.plnk").mkdir()
        (top / ".wh..wh.plnk" / "1234.5678").write_bytes(b"pseudo-link")
        (top / ".wh..wh.orph").mkdir()
    for path, spec in layer.items():
        if spec[0] in ("file", "fifo", "dir"):
            os.chmod(top / path, int(spec[-1]))  # type: ignore[call-overload]
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in [*filenames, *dirnames, ""]:
            where = Path(dirpath) / name if name else Path(dirpath)
            t = mtime_of(where.relative_to(top).as_posix(), index)
            os.utime(where, ns=(t, t), follow_symlinks=False)


@dataclass(frozen=True)
class Seen:
    """One entry as read back: what a snapshot must reproduce."""

    kind: str
    mode: int
    mtime_ns: int
    data: str  # sha256 of a file, a symlink's target
    identity: tuple[int, int]  # (dev, inode) of a regular file, for hard-link structure


def read_tree(top: Path) -> dict[str, Seen]:
    """Every entry under `top` (and `top` itself as ""), never followed."""
    out = {"": _seen(top)}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            out[path.relative_to(top).as_posix()] = _seen(path)
    return out


def _seen(path: Path) -> Seen:
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISREG(st.st_mode):
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        return Seen("file", mode, st.st_mtime_ns, sha, (st.st_dev, st.st_ino))
    if stat.S_ISLNK(st.st_mode):
        return Seen("symlink", 0, st.st_mtime_ns, os.readlink(path), (0, 0))
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "fifo" if stat.S_ISFIFO(st.st_mode) else "other"
    return Seen(kind, mode, st.st_mtime_ns, "", (0, 0))


def apply_layer(below: dict[str, Seen], diff: dict[str, Seen]) -> dict[str, Seen]:
    """The reference model: what a layer's snapshot holds, from its parent's snapshot and its
    diff as read from disk. Whiteouts and opaque markers remove from below; then each entry
    of the layer replaces what is at its path, except that a directory over a directory keeps
    what is in it; nothing named `.wh.*` (nor below one) is part of a snapshot."""
    snap = dict(below)

    def drop(path: str, children_only: bool = False) -> None:
        for key in [k for k in snap if k and (k.startswith(f"{path}/") or not path)]:
            del snap[key]
        if not children_only:
            snap.pop(path, None)

    for path in diff:
        parent, _, name = path.rpartition("/")
        if name == ".wh..wh..opq":
            drop(parent, children_only=True)
        elif name.startswith(".wh.") and not name.startswith(".wh..wh."):
            drop(f"{parent}/{name[4:]}" if parent else name[4:])
    for path in sorted(diff):
        if any(part.startswith(".wh.") for part in path.split("/")):
            continue
        entry = diff[path]
        there = snap.get(path)
        if path and there is not None and not (there.kind == entry.kind == "dir"):
            drop(path)
        snap[path] = entry
    return snap


def hard_link_groups(tree: dict[str, Seen]) -> set[frozenset[str]]:
    """Paths that are one file, where there are several."""
    groups: dict[tuple[int, int], set[str]] = {}
    for path, seen in tree.items():
        if seen.kind == "file":
            groups.setdefault(seen.identity, set()).add(path)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def without_identity(tree: dict[str, Seen]) -> dict[str, tuple[str, int, int, str]]:
    return {p: (s.kind, s.mode, s.mtime_ns, s.data) for p, s in tree.items()}


def write_legacy_root(
    root: Path,
    chain: Iterable[Layer],
    container: Layer | None = None,
    aufs_meta: bool = False,
) -> list[str]:
    """A legacy root: the chain as images layer0 <- layer1 <- ..., and a container `c0`
    on the last one when `container` is given. Returns the image ids, base first."""
    ids: list[str] = []
    for n, layer in enumerate(chain):
        image = f"layer{n}"
        write_layer(root / "graph" / image / "layer", normalise(layer), n, aufs_meta)
        meta = {"id": image, **({"parent": ids[-1]} if ids else {})}
        (root / "graph" / image / "json").write_text(json.dumps(meta))
        ids.append(image)
    if container is not None:
        write_layer(root / "containers" / "c0" / "rw", normalise(container), 99, aufs_meta)
        config = {"ID": "c0", "Image": ids[-1], "Name": "/c0"}
        (root / "containers" / "c0" / "config.json").write_text(json.dumps(config))
    (root / "repositories").write_text(json.dumps({"Repositories": {"x": {"l": ids[-1]}}}))
    return ids


# A chain with one of each thing a snapshot must handle, for the crash and filesystem tests.
RICH_CHAIN: list[Layer] = [
    {
        "etc/os-release": ("file", b"NAME=legacy\n" * 50, 0o644),
        "etc/shadow": ("file", b"root:*:0:0\n", 0o600),
        "etc/alias": ("link", "etc/os-release"),
        "bin/sh": ("file", b"\x7fELF" + bytes(range(256)) * 40, 0o755),
        "bin/su": ("file", b"setuid\n", 0o4755),
        "bin/bash": ("symlink", "sh"),
        "usr/lib/x/1": ("file", b"one\n", 0o644),
        "usr/lib/x/2": ("file", b"two\n", 0o644),
        "var/cache/a": ("file", b"cache\n", 0o644),
        "run/ctl": ("fifo", 0o620),
        "tmp": ("dir", 0o1777),
        "proc": ("dir", 0o555),
    },
    {
        "etc/os-release": ("file", b"NAME=updated\n", 0o644),
        "etc/.keep": ("file", b"", 0o644),
        "usr/lib/x": ("opaque",),
        "usr/lib/x/3": ("file", b"three\n", 0o644),
        "var/cache": ("whiteout",),
        "bin/bash": ("file", b"now a file\n", 0o755),
        "home/u/.profile": ("file", b"PS1=$\n", 0o640),
    },
    {
        "etc/alias": ("whiteout",),
        "home/u": ("dir", 0o700),
        "srv/link-out": ("symlink", "/etc/shadow"),
        "srv/data": ("file", b"d" * 3000, 0o644),
        "srv/data2": ("link", "srv/data"),
    },
]
RICH_CONTAINER: Layer = {
    "tmp/state": ("file", b"running\n", 0o644),
    "etc/shadow": ("whiteout",),
    "srv/data": ("file", b"changed by the container\n", 0o644),
}
