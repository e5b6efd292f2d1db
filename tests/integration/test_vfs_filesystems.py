"""The vfs migration on real filesystems, mounted for the test in its own directory: btrfs
and xfs (loop images) share every file by reflink; tmpfs hard-links image layers and copies
containers; a vfs/dir on another filesystem than the legacy graph gets copies; a filesystem
too small is refused before anything changes. Disk use is measured, never time."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.scratchfs import Unavailable, mounted, used
from tests.storage_world import converge, fake_proc, spec_text
from tests.vfs_world import (
    RICH_CHAIN,
    RICH_CONTAINER,
    Layer,
    Seen,
    apply_layer,
    read_tree,
    without_identity,
    write_legacy_root,
)

pytestmark = pytest.mark.root

MiB = 1 << 20
BIG = os.urandom(8 * MiB)  # in the base layer: every snapshot above holds it


def chain_with_big_file() -> list[Layer]:
    return [{**RICH_CHAIN[0], "opt/blob": ("file", BIG, 0o644)}, *RICH_CHAIN[1:]]


@pytest.fixture
def fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    kind, size = request.param
    try:
        with mounted(kind, tmp_path, size) as mnt:
            yield mnt
    except Unavailable as e:
        pytest.skip(f"no {kind} here: {e}")


def migrate(base: Path) -> object:
    (base / "spec.yaml").write_text(spec_text(base, "vfs"))
    return converge(base / "spec.yaml", fake_proc(base, with_aufs=False))


def snapshots_are_right(root: Path, chain: list[Layer]) -> None:
    snap: dict[str, Seen] = {}
    for n in range(len(chain)):
        snap = apply_layer(snap, read_tree(root / f"graph/layer{n}/layer-legacy"))
        assert without_identity(read_tree(root / f"vfs/dir/layer{n}")) == without_identity(snap)


@pytest.mark.parametrize("fs", [("btrfs", 256 * MiB), ("xfs", 300 * MiB)], indirect=True)
def test_a_filesystem_with_reflinks_shares_every_file(fs: Path) -> None:
    chain = chain_with_big_file()
    write_legacy_root(fs / "docker", chain, RICH_CONTAINER, aufs_meta=True)
    before = used(fs)
    outcome = migrate(fs)
    assert outcome.ok, outcome.error  # type: ignore[attr-defined]
    grown = used(fs) - before
    vfs = fs / "docker/vfs/dir"
    # Five snapshots hold the 8 MiB file; copies would take 40 MiB more.
    blobs = [vfs / layer / "opt/blob" for layer in ("layer0", "layer1", "layer2", "c0-init", "c0")]
    assert all(b.read_bytes() == BIG for b in blobs)
    assert len({b.stat().st_ino for b in blobs}) == 5  # reflinks: inodes of their own
    assert grown < 4 * MiB, f"{grown:,} bytes more for five snapshots of an 8 MiB file"
    snapshots_are_right(fs / "docker", chain)


@pytest.mark.parametrize("fs", [("tmpfs", 64 * MiB)], indirect=True)
def test_tmpfs_links_image_layers_and_copies_the_container(fs: Path) -> None:
    chain = chain_with_big_file()
    write_legacy_root(fs / "docker", chain, RICH_CONTAINER)
    before = used(fs)
    assert migrate(fs).ok  # type: ignore[attr-defined]
    grown = used(fs) - before
    vfs = fs / "docker/vfs/dir"
    images = [vfs / layer / "opt/blob" for layer in ("layer0", "layer1", "layer2", "c0-init")]
    assert len({b.stat().st_ino for b in images}) == 1  # hard links: one file
    assert (vfs / "c0/opt/blob").stat().st_nlink == 1  # the container's own copy
    assert 8 * MiB <= grown < 10 * MiB, f"{grown:,} bytes: one copy of 8 MiB expected"
    snapshots_are_right(fs / "docker", chain)


def test_a_vfs_dir_on_another_filesystem_gets_copies(tmp_path: Path) -> None:
    """graph/ on this machine's disk, vfs/dir a tmpfs: the layers' own files cannot be hard
    links there and are copied; a child's files from its parent's snapshot are links."""
    root = tmp_path / "docker"
    chain = chain_with_big_file()
    write_legacy_root(root, chain, RICH_CONTAINER)
    (root / "vfs" / "dir").mkdir(parents=True, mode=0o700)
    with mounted("tmpfs", tmp_path / "second", 64 * MiB, at=root / "vfs" / "dir") as vfs:
        before = used(vfs)
        assert migrate(tmp_path).ok  # type: ignore[attr-defined]
        grown = used(vfs) - before
        blob = (vfs / "layer0/opt/blob").stat()
        assert blob.st_nlink == 4  # the copy in layer0, linked by layer1, layer2 and c0-init
        assert (root / "graph/layer0/layer-legacy/opt/blob").stat().st_nlink == 1
        assert (vfs / "layer2/opt/blob").stat().st_ino == blob.st_ino
        assert 2 * 8 * MiB <= grown < 19 * MiB  # layer0's copy and the container's
        snapshots_are_right(root, chain)


@pytest.mark.parametrize("fs", [("tmpfs", 12 * MiB)], indirect=True)
def test_too_little_space_is_refused_before_anything_changes(fs: Path) -> None:
    root = fs / "docker"
    base: Layer = {"opt/blob": ("file", os.urandom(3 * MiB), 0o644)}
    write_legacy_root(root, [base], {"tmp/x": ("file", b"x", 0o644)})
    for n in (1, 2, 3):  # four containers: a copy of the 3 MiB image each
        shutil.copytree(root / "containers/c0", root / f"containers/c{n}")
        config = {"ID": f"c{n}", "Image": "layer0", "Name": f"/c{n}"}
        (root / f"containers/c{n}/config.json").write_text(json.dumps(config))
    # (graph/ and containers/ themselves are the directories reconciler's: made 0700)
    legacy = {d: read_tree(root / d) | {"": None} for d in ("graph", "containers")}
    outcome = migrate(fs)
    error = outcome.error  # type: ignore[attr-defined]
    assert error is not None
    assert f"not enough space in {root}/vfs/dir for 9 vfs snapshot(s) (" in error
    free = os.statvfs(fs).f_bavail * os.statvfs(fs).f_frsize
    assert "they need up to " in error and f", {free:,} are free; nothing was changed" in error
    assert {d: read_tree(root / d) | {"": None} for d in legacy} == legacy
    assert os.listdir(root / "vfs" / "dir") == []
    assert not (root / ".dockyard-migration.journal").exists()
    assert (root / "repositories").exists() and not (root / "repositories-vfs").exists()
