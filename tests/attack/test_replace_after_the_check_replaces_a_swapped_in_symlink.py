"""Tree.write and Tree.rename(replace=True) looked at the target (`expect`: a single-named
regular file), then renamed over it by name. Whoever can write in the directory puts a
symlink (or a directory, a FIFO) there between the look and the rename, and dockyard replaces
it: the thing the issue says is never followed, replaced or deleted. Deterministic: the
attacker acts exactly in that window, at the first rename dockyard makes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.state import safepath
from tests.attack.attackers import in_the_window


def swap_in_symlink(target: Path, to: Path) -> Callable[[], None]:
    def act() -> None:
        target.unlink()
        target.symlink_to(to)

    return act


def test_write_never_replaces_a_symlink_put_there_after_the_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top, outside = tmp_path / "root", tmp_path / "outside"
    top.mkdir()
    outside.write_bytes(b"outside\n")
    (top / "resolv.conf").write_bytes(b"old\n")
    in_the_window(monkeypatch, swap_in_symlink(top / "resolv.conf", outside), "rename")
    with pytest.raises(safepath.Unsafe, match="a symlink"):
        safepath.Tree(top).write("resolv.conf", b"new\n", 0o644)
    assert (top / "resolv.conf").is_symlink()
    assert os.readlink(top / "resolv.conf") == str(outside)
    assert outside.read_bytes() == b"outside\n"
    assert sorted(p.name for p in top.iterdir()) == ["resolv.conf"]  # no temporary left


def test_rename_never_replaces_a_directory_put_there_after_the_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = tmp_path / "root"
    top.mkdir()
    (top / "new").write_bytes(b"new\n")
    (top / "db").write_bytes(b"old\n")

    def act() -> None:
        (top / "db").unlink()
        (top / "db").mkdir()
        (top / "db" / "data").write_bytes(b"someone's\n")

    in_the_window(monkeypatch, act, "rename")
    with pytest.raises(safepath.Unsafe, match="a directory"):
        safepath.Tree(top).rename("new", "db", replace=True)
    assert (top / "db" / "data").read_bytes() == b"someone's\n"
    assert (top / "new").read_bytes() == b"new\n"


def test_a_regular_file_is_still_replaced(tmp_path: Path) -> None:
    top = tmp_path / "root"
    top.mkdir()
    (top / "f").write_bytes(b"old\n")
    safepath.Tree(top).write("f", b"new\n", 0o600)
    assert (top / "f").read_bytes() == b"new\n"
    assert sorted(p.name for p in top.iterdir()) == ["f"]
    assert (top / "f").stat().st_mode & 0o777 == 0o600
