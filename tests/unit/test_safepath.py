"""The one door to dockyard's trees: nothing below the top is followed, nothing read blocks."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from dockyard.errors import DockyardError
from dockyard.state.safepath import Sharing, TooLarge, Tree, Unsafe, parts, read_file


@pytest.fixture
def world(tmp_path: Path) -> tuple[Tree, Path]:
    top, decoy = tmp_path / "top", tmp_path / "decoy"
    top.mkdir()
    decoy.mkdir()
    (decoy / "precious").write_text("precious")
    (decoy / "precious").chmod(0o644)
    return Tree(top), decoy


def test_a_symlinked_directory_below_the_top_is_never_walked_through(
    world: tuple[Tree, Path],
) -> None:
    tree, decoy = world
    (tree.top / "vfs").symlink_to(decoy)
    with pytest.raises(Unsafe) as e:
        tree.mkdir("vfs/dir", 0o700)
    assert str(e.value) == (
        f"{tree.top}/vfs is a symlink (to {decoy}) where a directory belongs; "
        "dockyard leaves it alone, never follows it"
    )
    for call in (
        lambda: tree.read("vfs/precious"),
        lambda: tree.write("vfs/precious", b"x", 0o600),
        lambda: tree.set_attrs("vfs/precious", "file", 0o777),
        lambda: tree.unlink("vfs/precious"),
        lambda: tree.listdir("vfs"),
        lambda: tree.stat("vfs/precious"),
        lambda: tree.rename("vfs/precious", "stolen"),
    ):
        with pytest.raises(Unsafe):
            call()
    assert sorted(p.name for p in decoy.iterdir()) == ["precious"]
    assert (decoy / "precious").read_text() == "precious"
    assert (decoy / "precious").stat().st_mode & 0o777 == 0o644


def test_a_symlink_as_the_last_component_is_reported_never_followed(
    world: tuple[Tree, Path],
) -> None:
    tree, decoy = world
    (tree.top / "db").symlink_to(decoy / "precious")
    assert tree.stat("db").describe() == f"a symlink (to {decoy}/precious)"
    for call in (
        lambda: tree.read("db"),
        lambda: tree.write("db", b"x", 0o600),
        lambda: tree.set_attrs("db", "file", 0o777),
        lambda: tree.unlink("db"),
        lambda: tree.touch("db"),
        lambda: tree.append("db", b"x"),
        lambda: tree.expect("db", "file"),
    ):
        with pytest.raises(Unsafe):
            call()
    assert (decoy / "precious").read_text() == "precious"
    assert (tree.top / "db").is_symlink()


def test_a_hard_link_is_read_but_never_written_chmodded_or_removed(
    world: tuple[Tree, Path],
) -> None:
    tree, decoy = world
    os.link(decoy / "precious", tree.top / "f")
    assert tree.read("f") == b"precious"
    with pytest.raises(Unsafe, match=r"is a hard link \(2 names for one file\)"):
        tree.write("f", b"x", 0o600)
    with pytest.raises(Unsafe):
        tree.set_attrs("f", "file", 0o600)
    with pytest.raises(Unsafe):
        tree.unlink("f")
    assert (decoy / "precious").read_text() == "precious"
    assert (decoy / "precious").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("special", ["fifo", "socket", "/dev/zero", "/dev/urandom"])
def test_special_files_never_hang_or_fill_memory(tmp_path: Path, special: str) -> None:
    tree = Tree(tmp_path)
    if special == "fifo":
        os.mkfifo(tmp_path / "f")
        path = tmp_path / "f"
    elif special == "socket":
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(tmp_path / "f"))
        path = tmp_path / "f"
    else:
        path = Path(special)
    began = time.monotonic()
    with pytest.raises(DockyardError) as e:
        read_file(path)
    assert "not a regular file; not read" in str(e.value)
    if special in ("fifo", "socket"):
        with pytest.raises(Unsafe):
            tree.read("f")
        with pytest.raises(Unsafe):
            tree.write("f", b"x", 0o600)
    assert time.monotonic() - began < 10  # a bound on a hang, not a timing


def test_reads_are_capped(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 1001)
    with pytest.raises(TooLarge) as e:
        Tree(tmp_path).read("big", 1000)
    assert str(e.value) == f"{tmp_path}/big is larger than 1,000 bytes; not read"
    assert Tree(tmp_path).read("big", 1001) == b"x" * 1001


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../b", "a//b", ".", "a/./b", "a\0b"])
def test_only_plain_relative_paths_are_accepted(bad: str) -> None:
    with pytest.raises(ValueError, match="not a plain relative path"):
        parts(bad)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    (tmp_path / "f").write_text("old")
    tree.write("f", b"new", 0o640)
    assert (tmp_path / "f").read_bytes() == b"new"
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    assert tree.write("f", b"newer", 0o600, replace=False) is False
    assert (tmp_path / "f").read_bytes() == b"new"


def test_a_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    (tmp_path / "f").write_text("old")
    with pytest.raises(TypeError):
        tree.write("f", "not bytes", 0o600)  # type: ignore[arg-type]
    assert (tmp_path / "f").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_rename_never_clobbers(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    with pytest.raises(FileExistsError):
        tree.rename("a", "b")
    assert (tmp_path / "b").read_text() == "b"
    tree.rename("a", "c")
    assert (tmp_path / "c").read_text() == "a"


def test_remove_file_only_when_the_content_is_still_what_was_read(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    (tmp_path / "pid").write_text("123\n")
    with pytest.raises(DockyardError, match="changed since it was read"):
        tree.remove_file("pid", b"124\n")
    assert (tmp_path / "pid").exists()
    tree.remove_file("pid", b"123\n")
    assert not (tmp_path / "pid").exists()


def test_mkdir_sets_the_exact_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        Tree(tmp_path).makedirs("a/b", 0o755)
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "a/b").stat().st_mode & 0o777 == 0o755


# -- whole directories (vfs snapshots) --------------------------------------------------------


def test_a_held_directory_lists_symlinks_without_following_them(world: tuple[Tree, Path]) -> None:
    tree, decoy = world
    (tree.top / "d").mkdir()
    (tree.top / "d" / "out").symlink_to(decoy)
    (tree.top / "d" / "f").write_text("x")
    with tree.open_dir("d") as d:
        found = {n.name: (n.kind, n.target) for n in d.scan()}
        assert found == {"out": ("symlink", str(decoy)), "f": ("file", None)}
        symlink = r"d/out is a symlink \(to .*\) where a directory belongs"
        with pytest.raises(Unsafe, match=symlink), d.child("out"):
            pass
    (tree.top / "link").symlink_to(decoy)
    with pytest.raises(Unsafe), tree.open_dir("link"):
        pass


def test_a_file_is_made_whole_before_it_has_a_name(world: tuple[Tree, Path]) -> None:
    """Copied with content, owner, mode (setuid kept), extended attributes and times; a hard
    link when allowed shares the inode and changes nothing of it."""
    tree, _ = world
    (tree.top / "src").mkdir()
    (tree.top / "dst").mkdir()
    src = tree.top / "src" / "f"
    src.write_bytes(b"data" * 1000)
    os.chmod(src, 0o4750)
    os.setxattr(src, "user.origin", b"legacy")
    os.utime(src, ns=(1_000_000_001, 2_000_000_002))
    before = os.stat(src)
    with tree.open_dir("src") as s, tree.open_dir("dst") as d:
        node = next(n for n in s.scan() if n.name == "f")
        sharing = Sharing()
        assert d.put_file("copy", s, node, link=False, sharing=sharing) in ("copy", "reflink")
        assert d.put_file("linked", s, node, link=True, sharing=sharing) in ("link", "reflink")
    copy = os.stat(tree.top / "dst" / "copy")
    assert copy.st_ino != before.st_ino and copy.st_nlink == 1
    assert (copy.st_mode, copy.st_uid, copy.st_gid) == (
        before.st_mode,
        before.st_uid,
        before.st_gid,
    )
    assert (copy.st_atime_ns, copy.st_mtime_ns) == (1_000_000_001, 2_000_000_002)
    assert os.getxattr(tree.top / "dst" / "copy", "user.origin") == b"legacy"
    assert (tree.top / "dst" / "copy").read_bytes() == b"data" * 1000
    assert os.stat(src).st_mtime_ns == before.st_mtime_ns
    assert sorted(os.listdir(tree.top / "dst")) == ["copy", "linked"]


def test_a_file_swapped_after_it_was_looked_at_is_not_taken(world: tuple[Tree, Path]) -> None:
    tree, decoy = world
    (tree.top / "src").mkdir()
    (tree.top / "dst").mkdir()
    (tree.top / "src" / "f").write_text("looked at")
    with tree.open_dir("src") as s, tree.open_dir("dst") as d:
        node = s.scan()[0]
        (tree.top / "src" / "f").unlink()
        (tree.top / "src" / "f").symlink_to(decoy / "precious")
        for link in (True, False):
            with pytest.raises(Unsafe, match="no longer the file dockyard looked at"):
                d.put_file("f", s, node, link=link, sharing=Sharing())
    assert os.listdir(tree.top / "dst") == []
    assert os.stat(decoy / "precious").st_nlink == 1


def test_symlinks_and_fifos_are_made_again_with_their_owner_mode_and_times(
    world: tuple[Tree, Path],
) -> None:
    tree, decoy = world
    (tree.top / "src").mkdir()
    (tree.top / "dst").mkdir()
    (tree.top / "src" / "l").symlink_to(decoy / "precious")
    os.mkfifo(tree.top / "src" / "p", 0o600)
    os.chmod(tree.top / "src" / "p", 0o640)
    for name in ("l", "p"):
        os.utime(tree.top / "src" / name, ns=(5, 7_000_000_000), follow_symlinks=False)
    with tree.open_dir("src") as s, tree.open_dir("dst") as d:
        link, fifo = s.scan()
        for _ in range(2):  # again: what an interrupted run made is kept and finished
            d.put_symlink("l", link)
            d.put_special("p", fifo)
    made = tree.top / "dst"
    assert os.readlink(made / "l") == str(decoy / "precious")
    assert os.lstat(made / "l").st_mtime_ns == 7_000_000_000
    assert os.lstat(made / "p").st_mode == os.lstat(tree.top / "src" / "p").st_mode
    assert os.lstat(made / "p").st_mtime_ns == 7_000_000_000
    assert os.stat(decoy / "precious").st_mtime_ns != 7_000_000_000


def test_no_reflink_on_tmpfs_and_nothing_left_by_trying(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm here")
    base = Path(tempfile.mkdtemp(dir=shm))
    try:
        (base / "f").write_text("x")
        tree = Tree(base)
        assert tree.can_reflink("f", "") is False
        assert os.listdir(base) == ["f"]
        assert tree.statvfs("").f_bsize > 0
        tree.sync("")
    finally:
        shutil.rmtree(base)
