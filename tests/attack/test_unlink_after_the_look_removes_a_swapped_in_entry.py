"""Tree.unlink and Tree.remove_file looked at the file (a single-named regular file; for
remove_file, the very file read), then removed the name. Whoever can write in the directory
puts something else there between the look and the removal, and dockyard removes it: a FIFO,
a symlink, another file's second name. Deterministic: the attacker acts exactly in that
window, just before the first rename or unlink dockyard makes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.errors import DockyardError
from dockyard.state import safepath
from tests.attack.attackers import in_the_window


def test_unlink_never_removes_a_fifo_put_there_after_the_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = tmp_path / "state"
    top.mkdir()
    (top / "journal").write_bytes(b"ours\n")

    def act() -> None:
        (top / "journal").unlink()
        os.mkfifo(top / "journal")

    in_the_window(monkeypatch, act, "unlink")
    with pytest.raises(safepath.Unsafe, match="fifo"):
        safepath.Tree(top).unlink("journal")
    assert (top / "journal").is_fifo()
    assert sorted(p.name for p in top.iterdir()) == ["journal"]


def test_remove_file_never_removes_another_file_swapped_in_after_it_was_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = tmp_path / "root"
    top.mkdir()
    (top / "linkgraph.db").write_bytes(b"ours\n")

    def act() -> None:  # same bytes, another file: someone else's
        (top / "linkgraph.db").unlink()
        (top / "linkgraph.db").write_bytes(b"ours\n")
        os.chmod(top / "linkgraph.db", 0o640)

    in_the_window(monkeypatch, act, "unlink")
    with pytest.raises(DockyardError, match="replaced since it was read"):
        safepath.Tree(top).remove_file("linkgraph.db", b"ours\n")
    assert (top / "linkgraph.db").read_bytes() == b"ours\n"
    assert (top / "linkgraph.db").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in top.iterdir()) == ["linkgraph.db"]


def test_a_regular_file_is_still_removed(tmp_path: Path) -> None:
    top = tmp_path / "root"
    top.mkdir()
    (top / "a").write_bytes(b"x")
    (top / "b").write_bytes(b"y")
    tree = safepath.Tree(top)
    tree.unlink("a")
    tree.remove_file("b", b"y")
    tree.unlink("missing")
    assert list(top.iterdir()) == []
