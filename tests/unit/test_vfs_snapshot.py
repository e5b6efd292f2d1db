"""vfs snapshots: each layer holds its parents' files with its own on top, whiteouts and
opaque directories as aufs showed them; data shared by hard links for images, never for a
container; an interrupted snapshot is finished. On tmpfs (/dev/shm) where there is one."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.errors import DockyardError
from dockyard.reconcilers.vfs_snapshot import (
    INIT,
    Pick,
    legacy_home,
    materialise,
    merged,
    need,
    staging_of,
    view,
)
from dockyard.state.safepath import Node, Tree
from tests.vfs_world import (
    RICH_CHAIN,
    RICH_CONTAINER,
    Layer,
    Seen,
    apply_layer,
    hard_link_groups,
    normalise,
    read_tree,
    without_identity,
    write_legacy_root,
)

EXAMPLES = int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "300"))
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"


def node(name: str, kind: str = "file") -> Node:
    return Node(name, kind, 0, 0o644, 0, 0, 0, 1, 0, 0, 0, 0, 0)  # type: ignore[arg-type]


def names(picks: list[Pick]) -> list[tuple[str, bool, str | None]]:
    return [(p.node.name, p.own, p.below and p.below.name) for p in picks]


# -- the rules, one directory at a time (pure) ----------------------------------------------


def test_a_whiteout_hides_a_name_from_below_and_is_never_an_entry() -> None:
    layer = view([node(".wh.gone"), node("new")])
    assert layer.hidden == {"gone"} and set(layer.own) == {"new"}
    lower = [node("gone"), node("kept")]
    assert names(merged(layer, lower)) == [("kept", False, None), ("new", True, None)]


def test_an_opaque_directory_takes_nothing_from_below() -> None:
    layer = view([node(".wh..wh..opq"), node("mine")])
    assert layer.opaque and set(layer.own) == {"mine"}
    assert names(merged(layer, [node("theirs"), node("mine")])) == [("mine", True, None)]


def test_aufs_own_entries_are_left_out() -> None:
    layer = view([node(".wh..wh.aufs"), node(".wh..wh.plnk", "directory"), node("x")])
    assert not layer.opaque and not layer.hidden and set(layer.own) == {"x"}


def test_the_layers_entry_wins_and_two_directories_merge() -> None:
    layer = view([node("d", "directory"), node("f"), node("was-dir"), node("now-dir", "directory")])
    lower = [node("d", "directory"), node("f"), node("was-dir", "directory"), node("now-dir")]
    assert names(merged(layer, lower)) == [
        ("d", True, "d"),  # merged: the layer's attributes, both contents
        ("f", True, None),
        ("now-dir", True, None),  # a directory over a file: nothing from below
        ("was-dir", True, None),  # a file over a directory: the directory is gone
    ]


def test_a_whiteout_beside_the_layers_own_entry_replaces_without_merging() -> None:
    """ApplyLayer removes the whited-out name first, then unpacks the layer's entry."""
    layer = view([node(".wh.d"), node("d", "directory")])
    assert names(merged(layer, [node("d", "directory")])) == [("d", True, None)]


# -- snapshots on disk ------------------------------------------------------------------------


@pytest.fixture
def scratch() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="vfs", dir=SCRATCH))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def snapshot_all(root: Path, ids: list[str], container: bool) -> Tree:
    tree = Tree(root)
    parent = ""
    for image in ids:
        materialise(tree, f"vfs/dir/{image}", parent, f"graph/{image}/layer", lambda: None)
        parent = f"vfs/dir/{image}"
    if container:
        materialise(tree, "vfs/dir/c0", parent, "containers/c0/rw", lambda: None)
    return tree


def expected(diffs: list[dict[str, Seen]]) -> list[dict[str, Seen]]:
    out, snap = [], {}
    for diff in diffs:
        snap = apply_layer(snap, diff)
        out.append(snap)
    return out


def check(root: Path, ids: list[str], diffs: list[dict[str, Seen]], container: bool) -> None:
    """Every snapshot as the reference model has it, with the same hard-link structure, and
    every legacy diff kept as it was."""
    layers = [*ids, "c0"] if container else ids
    for layer, want, diff in zip(layers, expected(diffs), diffs, strict=True):
        got = read_tree(root / "vfs" / "dir" / layer)
        assert without_identity(got) == without_identity(want), layer
        assert hard_link_groups(got) == hard_link_groups(want), layer
        source = f"graph/{layer}/layer" if layer != "c0" else "containers/c0/rw"
        assert without_identity(read_tree(root / legacy_home(source))) == without_identity(diff)
        assert not (root / source).exists()
    assert not list((root / "vfs" / "dir").glob(".dockyard*"))


def legacy_diffs(root: Path, ids: list[str], container: bool) -> list[dict[str, Seen]]:
    sources = [root / "graph" / i / "layer" for i in ids]
    if container:
        sources.append(root / "containers" / "c0" / "rw")
    return [read_tree(s) for s in sources]


def test_a_chain_is_materialised_as_the_reference_model_has_it(scratch: Path) -> None:
    root = scratch / "docker"
    ids = write_legacy_root(root, RICH_CHAIN, RICH_CONTAINER, aufs_meta=True)
    diffs = legacy_diffs(root, ids, True)
    snapshot_all(root, ids, True)
    check(root, ids, diffs, True)
    top = root / "vfs" / "dir" / "layer2"
    assert (top / "etc/os-release").read_text() == "NAME=updated\n"
    assert sorted(os.listdir(top / "usr/lib/x")) == ["3"]  # opaque: 1 and 2 are gone
    assert not (top / "var/cache").exists() and not (top / "etc/alias").exists()
    assert os.readlink(top / "srv/link-out") == "/etc/shadow"  # a symlink, never followed
    assert (top / "bin/su").stat().st_mode & 0o7777 == 0o4755
    assert not any(p.name.startswith(".wh.") for p in top.rglob("*"))


def test_image_layers_are_hard_links_and_a_container_owns_every_file(scratch: Path) -> None:
    root = scratch / "docker"
    ids = write_legacy_root(root, RICH_CHAIN, RICH_CONTAINER)
    snapshot_all(root, ids, True)
    vfs = root / "vfs" / "dir"
    shell = [(vfs / i / "bin/sh").stat() for i in ids]
    assert len({s.st_ino for s in shell}) == 1  # one file for the three images
    assert (root / "graph/layer0/layer-legacy/bin/sh").stat().st_ino == shell[0].st_ino
    images = {p.stat().st_ino for i in ids for p in (vfs / i).rglob("*") if p.is_file()}
    mine = [p for p in (vfs / "c0").rglob("*") if p.is_file() and not p.is_symlink()]
    assert mine and all(p.stat().st_ino not in images for p in mine)
    assert (vfs / "c0/srv/data2").read_bytes() == b"d" * 3000  # still the image's content
    assert (vfs / "c0/srv/data").read_bytes() == b"changed by the container\n"


def test_an_init_layer_is_the_image_with_dockers_init_entries(scratch: Path) -> None:
    root = scratch / "docker"
    image: Layer = {
        "etc/hosts": ("symlink", "/elsewhere"),  # Docker unlinks it, then makes a file
        "etc/hostname": ("dir", 0o755),  # a directory stays
        "dev/console": ("fifo", 0o600),
        "etc/passwd": ("file", b"root:x:0:0\n", 0o644),
    }
    ids = write_legacy_root(root, [image])
    tree = snapshot_all(root, ids, False)
    materialise(tree, "vfs/dir/c0-init", "vfs/dir/layer0", INIT, lambda: None)
    init = read_tree(root / "vfs/dir/c0-init")
    assert init["etc/hosts"].kind == "file" and init["etc/hosts"].data == EMPTY
    assert init["etc/hostname"].kind == "dir"
    assert init["dev/console"].kind == "file"
    assert init["etc/passwd"] == read_tree(root / "vfs/dir/layer0")["etc/passwd"]
    assert {"dev/pts", "dev/shm", "proc", "sys", ".dockerinit", ".dockerenv"} <= set(init)
    assert os.readlink(root / "vfs/dir/c0-init/etc/mtab") == "/proc/mounts"


EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class Interrupted(Exception):
    pass


def interrupt_at(k: int) -> Callable[[], None]:
    events = 0

    def tick() -> None:
        nonlocal events
        events += 1
        if events == k:
            raise Interrupted

    return tick


def test_a_snapshot_interrupted_at_any_entry_is_finished_by_the_next_run(scratch: Path) -> None:
    reference = scratch / "reference"
    ids = write_legacy_root(reference, RICH_CHAIN, RICH_CONTAINER)
    diffs = legacy_diffs(reference, ids, True)
    k = 0
    while True:
        k += 1
        root = scratch / f"k{k}"
        write_legacy_root(root, RICH_CHAIN, RICH_CONTAINER)
        tick = interrupt_at(k)
        tree, parent = Tree(root), ""
        layers = [(f"vfs/dir/{i}", f"graph/{i}/layer") for i in ids]
        try:
            for dst, source in [*layers, ("vfs/dir/c0", "containers/c0/rw")]:
                materialise(tree, dst, parent, source, tick)
                parent = dst
            finished = True
        except Interrupted:
            finished = False
        snapshot_all(root, ids, True)  # the next run: every snapshot again, in order
        check(root, ids, diffs, True)
        shutil.rmtree(root)
        if finished:
            break
    assert k > 50  # every entry of every snapshot was a point of interruption


def test_the_last_steps_of_a_snapshot_are_resumed(scratch: Path) -> None:
    """Killed after the legacy diff was renamed aside, before the snapshot got its name."""
    root = scratch / "docker"
    ids = write_legacy_root(root, RICH_CHAIN[:1])
    diffs = legacy_diffs(root, ids, False)
    tree = Tree(root)
    staging = staging_of("vfs/dir/layer0")
    (root / "vfs" / "dir").mkdir(parents=True)
    subprocess.run(["cp", "-a", root / "graph/layer0/layer", root / staging], check=True)
    (root / "graph/layer0/layer").rename(root / legacy_home("graph/layer0/layer"))
    materialise(tree, "vfs/dir/layer0", "", "graph/layer0/layer", lambda: None)
    assert not (root / staging).exists()
    assert set(read_tree(root / "vfs/dir/layer0")) == set(diffs[0])  # the staging, as it was


def test_a_snapshot_someone_else_made_is_never_overwritten(scratch: Path) -> None:
    root = scratch / "docker"
    ids = write_legacy_root(root, RICH_CHAIN[:1])
    (root / "vfs/dir/layer0").mkdir(parents=True)
    (root / "vfs/dir/layer0/theirs").write_text("theirs")
    with pytest.raises(DockyardError, match="vfs/dir/layer0 exists already; nothing was moved"):
        materialise(Tree(root), "vfs/dir/layer0", "", f"graph/{ids[0]}/layer", lambda: None)
    assert os.listdir(root / "vfs/dir/layer0") == ["theirs"]
    assert (root / "graph/layer0/layer/etc/os-release").exists()


def test_space_needed_counts_copies_only_where_nothing_can_be_shared(scratch: Path) -> None:
    """tmpfs: no reflink, hard links for images; a container's files are copied (its own
    and every file of the image below it), rounded up to blocks."""
    root = scratch / "docker"
    image: Layer = {"big": ("file", b"x" * 100_000, 0o644), "d": ("dir", 0o755)}
    container: Layer = {"mine": ("file", b"y" * 5000, 0o644)}
    write_legacy_root(root, [image], container)
    (root / "vfs" / "dir").mkdir(parents=True)
    tree = Tree(root)
    block = tree.statvfs("vfs/dir").f_frsize
    pending = [
        ("vfs/dir/layer0", "", "graph/layer0/layer"),
        ("vfs/dir/c0", "vfs/dir/layer0", "containers/c0/rw"),
    ]
    wanted = need(tree, pending, "vfs/dir")
    blocks = -(-100_000 // block) + -(-5000 // block)
    dirs = 2 + 2 + 1  # image root and d, as the container's lower part and as the image; c0
    assert wanted.bytes == blocks * block + dirs * block
    assert "hard links for image layers" in wanted.how
    assert os.listdir(root / "vfs/dir") == []  # the reflink was tried on a nameless file


# -- the property ------------------------------------------------------------------------------

NAMES = ("a", "b", ".c")
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
DIR_MODES = [0o755, 0o700, 0o1777] + ([0o555] if os.geteuid() == 0 else [])
entries = st.one_of(
    st.tuples(st.just("file"), st.binary(max_size=12), st.sampled_from([0o644, 0o600, 0o4755])),
    st.tuples(st.just("dir"), st.sampled_from(DIR_MODES)),
    st.tuples(st.just("symlink"), st.sampled_from(["a", "../b", "/etc/passwd", "a/.c"])),
    st.tuples(st.just("fifo"), st.sampled_from([0o644, 0o600])),
    st.tuples(st.just("link"), paths),
    st.tuples(st.just("whiteout")),
    st.tuples(st.just("opaque")),
)
layers = st.dictionaries(paths, entries, max_size=8).map(normalise)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(
    chain=st.lists(layers, min_size=1, max_size=4),
    container=st.one_of(st.none(), layers),
    aufs_meta=st.booleans(),
)
def test_snapshots_equal_the_reference_model(
    chain: list[Layer], container: Layer | None, aufs_meta: bool
) -> None:
    base = Path(tempfile.mkdtemp(prefix="vfsp", dir=SCRATCH))
    try:
        root = base / "docker"
        ids = write_legacy_root(root, chain, container, aufs_meta)
        diffs = legacy_diffs(root, ids, container is not None)
        snapshot_all(root, ids, container is not None)
        check(root, ids, diffs, container is not None)
        if container is not None:
            images = {
                s.identity
                for i in ids
                for s in read_tree(root / "vfs/dir" / i).values()
                if s.kind == "file"
            }
            mine = [s for s in read_tree(root / "vfs/dir/c0").values() if s.kind == "file"]
            assert not {s.identity for s in mine} & images
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="device nodes need root")
def test_devices_sockets_and_extended_attributes_are_kept(scratch: Path) -> None:
    root = scratch / "docker"
    ids = write_legacy_root(root, [{"etc/x": ("file", b"x", 0o644)}], {"d/f": ("file", b"", 0o600)})
    layer = root / "graph/layer0/layer"
    os.mknod(layer / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(layer / "null", 0o666)  # past the umask
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(layer / "sock"))
    os.setxattr(layer / "etc", "user.dir", b"kept")
    rw = root / "containers/c0/rw"
    os.setxattr(rw / "d/f", "user.file", b"kept too")
    snapshot_all(root, ids, True)
    for top in (root / "vfs/dir/layer0", root / "vfs/dir/c0"):
        null = os.lstat(top / "null")
        assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
        assert stat.S_IMODE(null.st_mode) == 0o666
        assert stat.S_ISSOCK(os.lstat(top / "sock").st_mode)
        assert os.getxattr(top / "etc", "user.dir") == b"kept"
    assert os.getxattr(root / "vfs/dir/c0/d/f", "user.file") == b"kept too"
    assert os.stat(root / "vfs/dir/c0/d/f").st_nlink == 1


def test_a_file_with_all_the_names_it_can_take_is_copied(tmp_path: Path) -> None:
    """ext4 gives an inode at most 65,000 names: past that, the file is copied."""
    kind = subprocess.run(["stat", "-f", "-c", "%T", tmp_path], capture_output=True, text=True)
    if "ext" not in kind.stdout:
        pytest.skip(f"{tmp_path} is on {kind.stdout.strip()}, not ext4 (no link limit to reach)")
    root = tmp_path / "docker"
    ids = write_legacy_root(root, [{"full": ("file", b"many names", 0o644)}])
    source = root / "graph/layer0/layer/full"
    (tmp_path / "names").mkdir()
    n = 1
    while True:
        try:
            os.link(source, tmp_path / "names" / str(n))
        except OSError as e:
            assert e.errno == errno.EMLINK
            break
        n += 1
    snapshot_all(root, ids, False)
    made = os.stat(root / "vfs/dir/layer0/full")
    assert made.st_ino != os.stat(source.parent.parent / "layer-legacy/full").st_ino
    assert (root / "vfs/dir/layer0/full").read_bytes() == b"many names"
