"""Property: whatever an attacker puts where dockyard expects a directory or a file — a
symlink out of the root, a hard link, a FIFO, a socket, a file or a directory of the wrong
kind — plan and apply never follow it, never change the decoy tree outside the root, never
hang, never end in a traceback, and either converge or name the offending path.

`make test` runs 500 examples; `make fuzz` many more (DOCKYARD_FUZZ_EXAMPLES)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.errors import DockyardError
from tests.hostile_world import World, make_world, snapshot

EXAMPLES = int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "500"))
RUN_BOUND = 30  # seconds: a run that takes longer has hung
# tmpfs where there is one: the runs fsync every write, which a disk makes slow; the
# properties do not depend on the filesystem.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"

# What dockyard expects to be a directory or a regular file; `@state/` is its state_dir,
# `@pid` the spec's pid file.
TARGETS = (
    "containers",
    "graph",
    "volumes",
    "init",
    "execdriver",
    "execdriver/native",
    "tmp",
    "vfs",
    "vfs/dir",
    "vfs/dir/base0000",
    "vfs/dir/c0ffee000001-init",
    "aufs",
    "aufs/diff",
    "aufs/layers",
    "aufs/layers/top00000",
    "aufs/mnt",
    "graph/base0000",
    "graph/top00000",
    "graph/top00000/layer",
    "graph/top00000/json",
    "containers/c0ffee000001",
    "containers/c0ffee000001/rw",
    "containers/c0ffee000001/config.json",
    "repositories",
    "repositories-vfs",
    "repositories-aufs",
    "resolv.conf",
    "resolv.conf.hash",
    "linkgraph.db",
    "init/dockerinit-1.2.0",
    ".dockyard-migration.journal",
    ".dockyard-migration.progress",
    "@state/ledger.json",
    "@state/lock",
    "@pid",
)
HOSTILE = ("symlink-dir", "symlink-file", "dangling", "hardlink", "fifo", "socket", "file", "dir")


def where(world: World, target: str) -> Path:
    if target == "@pid":
        return world.pidfile
    if target.startswith("@state/"):
        return world.state / target.removeprefix("@state/")
    return world.root / target


def plant(world: World, path: Path, what: str) -> None:
    """Replace whatever is at `path` with `what`; parents are made real directories."""
    if path.is_symlink() or path.exists():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    decoy = world.decoy
    if what == "symlink-dir":
        path.symlink_to(decoy / "vfs")
    elif what == "symlink-file":
        path.symlink_to(decoy / "precious")
    elif what == "dangling":
        path.symlink_to(decoy / "created-through-a-link")
    elif what == "hardlink":
        os.link(decoy / "precious", path)
    elif what == "fifo":
        os.mkfifo(path)
    elif what == "socket":
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))
    elif what == "file":
        path.write_text("not what dockyard expects\n")
    else:
        path.mkdir()


@contextlib.contextmanager
def bounded(seconds: int) -> Iterator[None]:
    def hung(signum: int, frame: object) -> None:
        raise TimeoutError(f"a run took more than {seconds}s: it hangs")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


mutations = st.lists(
    st.tuples(st.sampled_from(TARGETS), st.sampled_from(HOSTILE)),
    min_size=1,
    max_size=4,
    unique_by=lambda m: m[0],
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(
    driver=st.sampled_from(["vfs", "aufs"]),
    converged_first=st.booleans(),
    planted=mutations,
)
def test_a_hostile_tree_is_never_followed(
    driver: str, converged_first: bool, planted: list[tuple[str, str]]
) -> None:
    # Short paths: a unix socket's name is limited to 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="h", dir=SCRATCH))
    try:
        world = make_world(base, driver=driver)
        if converged_first:
            assert world.run().ok
        # Deepest first, so that a parent replaced later wins over what was planted below it.
        paths = [(where(world, t), what) for t, what in planted]
        for path, what in sorted(paths, key=lambda p: -len(p[0].parts)):
            plant(world, path, what)
        before = snapshot(world.decoy)
        try:
            with bounded(RUN_BOUND):
                world.run(dry_run=True)
                outcome = world.run()
            error = outcome.error
        except DockyardError as e:  # what `reconcile` prints as one line (the lock, say)
            error = str(e)
        assert snapshot(world.decoy) == before, f"the decoy changed: {planted}"
        named = [str(p) for p, _ in paths]
        if error is not None:
            assert any(p in error for p in named), f"{error!r} names none of {named}"
        else:
            # A run that succeeds has converged, unless its plan named what was planted.
            notes = [n.message for n in outcome.plan.notes]
            with bounded(RUN_BOUND):
                left = world.run(dry_run=True).plan.changes
            assert not left or any(p in m for m in notes for p in named), (
                f"neither converged nor reported {named}: {[c.resource for c in left]}"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
