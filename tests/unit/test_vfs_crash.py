"""A migration into vfs killed (SIGKILL) at any point -- between two entries of a snapshot,
between a step and its record, at a random moment seen from outside -- is finished by the
next run, and the host ends exactly as after a migration never interrupted: every snapshot,
every legacy diff kept aside, the same hard-link structure."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.storage_world import fake_proc, spec_text
from tests.vfs_world import (
    RICH_CHAIN,
    RICH_CONTAINER,
    Layer,
    hard_link_groups,
    read_tree,
    write_legacy_root,
)

TESTS = Path(__file__).resolve().parents[1]
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"


def host(base: Path, chain: list[Layer] = RICH_CHAIN) -> tuple[Path, Path]:
    write_legacy_root(base / "docker", chain, RICH_CONTAINER, aufs_meta=True)
    (base / "spec.yaml").write_text(spec_text(base, "vfs"))
    return base / "spec.yaml", fake_proc(base, with_aufs=False)


def start(spec: Path, proc: Path, crash_after: int | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    if crash_after is not None:
        env["DOCKYARD_CRASH_AFTER_STEPS"] = str(crash_after)
    return subprocess.Popen(
        [sys.executable, str(TESTS / "storage_world.py"), str(spec), str(proc)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def run(spec: Path, proc: Path, crash_after: int | None = None) -> int:
    p = start(spec, proc, crash_after)
    out, _ = p.communicate()
    assert p.returncode in (0, -9), out.decode()
    return p.returncode


def state(root: Path) -> tuple[dict[str, tuple[str, int, str]], set[frozenset[str]]]:
    """Every entry (kind, mode, content; FIFOs never opened) and which paths are one file.
    Not times: an init layer's entries are made when the migration runs, as Docker's were."""
    tree = read_tree(root)
    return {p: (s.kind, s.mode, s.data) for p, s in tree.items()}, hard_link_groups(tree)


def test_killed_at_any_event_then_finished_equals_never_killed(tmp_path: Path) -> None:
    spec, proc = host(tmp_path / "reference")
    assert run(spec, proc) == 0
    want = state(tmp_path / "reference" / "docker")
    assert (tmp_path / "reference/docker/vfs/dir/c0/srv/data2").exists()
    k, killed = 1, 0
    while True:
        base = tmp_path / f"k{k}"
        spec, proc = host(base)
        if run(spec, proc, k) == 0:  # past the last event: nothing left to kill
            break
        killed += 1
        assert run(spec, proc) == 0, f"not finished after a kill at event {k}"
        assert state(base / "docker") == want, f"differs after a kill at event {k}"
        k += 13
    assert killed >= 8


def test_killed_at_a_random_moment_then_finished_equals_never_killed(tmp_path: Path) -> None:
    """From outside: once the journal is written, SIGKILL after a random delay."""
    big: list[Layer] = [
        {**RICH_CHAIN[0], **{f"usr/share/f{i}": ("file", b"%d" % i, 0o644) for i in range(1500)}},
        *RICH_CHAIN[1:],
    ]
    spec, proc = host(tmp_path / "reference", big)
    # How long the migration runs once its journal is written, on this machine now: the kills
    # fall within that span, so that they land part way whatever the machine's speed.
    span = _after_the_journal(start(spec, proc), tmp_path / "reference")
    want = state(tmp_path / "reference" / "docker")
    rng = random.Random(14)
    killed = 0
    # Up to 12 tries for 4 kills that land: a try that finished before its kill (the machine
    # sped up since the reference run) halves the span the next delays are drawn from.
    for n in range(12):
        if killed == 4:
            break
        base = Path(f"{tmp_path}/r{n}")
        spec, proc = host(base, big)
        journal = base / "docker" / ".dockyard-migration.journal"
        p = start(spec, proc)
        while not journal.exists() and p.poll() is None:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.8 * span))
        p.send_signal(signal.SIGKILL)
        p.communicate()
        killed += p.returncode == -9  # not when it had finished already
        span = span if p.returncode == -9 else span / 2
        assert run(spec, proc) == 0
        assert state(base / "docker") == want, f"differs after kill {n}"
    assert killed >= 2


def _after_the_journal(p: subprocess.Popen[bytes], base: Path) -> float:
    journal = base / "docker" / ".dockyard-migration.journal"
    while not journal.exists() and p.poll() is None:
        time.sleep(0.001)
    began = time.monotonic()
    out, _ = p.communicate()
    assert p.returncode == 0, out.decode()
    return time.monotonic() - began
