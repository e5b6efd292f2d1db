"""What a probe found this boot, kept in the state directory (state/bootfacts.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dockyard.state.bootfacts import NAME, BootFacts, boot_key, monotonic_clock
from dockyard.state.safepath import Tree

KEY = {"boot_id": "b-1", "kernel": "6.1.0", "filesystem": "ext2/ext3", "device": "2049"}
FACT = {"reason": "overlay mounts on /var/lib (ext2/ext3), with d_type"}


def proc_with(base: Path, boot_id: str | None = "b-1", release: str = "6.1.0") -> Path:
    kernel = base / "proc/sys/kernel"
    (kernel / "random").mkdir(parents=True)
    if boot_id is not None:
        (kernel / "random/boot_id").write_text(f"{boot_id}\n")
    (kernel / "osrelease").write_text(f"{release}\n")
    return base / "proc"


def test_the_key_is_the_boot_the_kernel_and_the_filesystem(tmp_path: Path) -> None:
    assert boot_key(proc_with(tmp_path), "ext2/ext3", 2049) == KEY


def test_without_a_boot_id_nothing_is_kept(tmp_path: Path) -> None:
    assert boot_key(proc_with(tmp_path, boot_id=None), "ext2/ext3", 2049) is None


def test_the_monotonic_clock_is_the_boot_and_the_time_namespace(tmp_path: Path) -> None:
    proc = proc_with(tmp_path)
    assert monotonic_clock(proc) == "b-1/0"  # no time namespaces: one clock for the boot
    (proc / "self/ns").mkdir(parents=True)
    (proc / "self/ns/time").write_text("")
    assert monotonic_clock(proc) == f"b-1/{(proc / 'self/ns/time').stat().st_ino}"
    assert monotonic_clock(proc_with(tmp_path / "other", boot_id=None)) == ""
    assert monotonic_clock().startswith(Path("/proc/sys/kernel/random/boot_id").read_text()[:36])


def test_a_fact_is_used_only_under_the_key_it_was_found_under(tmp_path: Path) -> None:
    facts = BootFacts(Tree(tmp_path))
    facts.put("probe", KEY, FACT)
    facts.save()
    again = BootFacts.load(Tree(tmp_path))
    assert again.get("probe", KEY) == FACT
    for field, other in (
        ("boot_id", "b-2"),
        ("kernel", "6.2.0"),
        ("filesystem", "xfs"),
        ("device", "2050"),
    ):
        assert again.get("probe", {**KEY, field: other}) is None, field
    assert again.get("another probe", KEY) is None


def test_the_file_is_private_and_nothing_is_written_when_nothing_was_learnt(
    tmp_path: Path,
) -> None:
    BootFacts(Tree(tmp_path)).save()
    assert not (tmp_path / NAME).exists()
    facts = BootFacts(Tree(tmp_path))
    facts.put("probe", KEY, FACT)
    facts.save()
    assert (tmp_path / NAME).stat().st_mode & 0o777 == 0o600
    before = (tmp_path / NAME).stat().st_mtime_ns
    loaded = BootFacts.load(Tree(tmp_path))
    loaded.put("probe", KEY, FACT)  # the same again: nothing new
    loaded.save()
    assert (tmp_path / NAME).stat().st_mtime_ns == before


def test_the_state_directory_is_never_made_for_it(tmp_path: Path) -> None:
    facts = BootFacts(Tree(tmp_path / "state"))
    facts.put("probe", KEY, FACT)
    facts.save()
    assert not (tmp_path / "state").exists()


def test_a_damaged_file_reads_as_empty_and_is_replaced(tmp_path: Path) -> None:
    for damaged in (
        "{not json",
        "[]",
        '{"format_version": 2, "facts": {}}',
        '{"format_version": 1, "facts": {"probe": {"key": 1, "value": {}}}}',
    ):
        (tmp_path / NAME).write_text(damaged)
        facts = BootFacts.load(Tree(tmp_path))
        assert facts.known == {}, damaged
        facts.put("probe", KEY, FACT)
        facts.save()
        assert json.loads((tmp_path / NAME).read_text())["facts"]["probe"]["key"] == KEY


def test_a_symlink_in_its_place_is_neither_followed_nor_replaced(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("not dockyard's")
    state = tmp_path / "state"
    state.mkdir()
    os.symlink(target, state / NAME)
    facts = BootFacts.load(Tree(state))
    assert facts.known == {}
    facts.put("probe", KEY, FACT)
    facts.save()  # refused, and the run goes on
    assert (state / NAME).is_symlink()
    assert target.read_text() == "not dockyard's"
