"""A host whose Docker root an attacker has prepared: a legacy root, dockyard's own files, and a
decoy tree outside the root that must come out of every run byte for byte as it went in.
Shared by the explicit hostile-filesystem tests and the property-based one."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard import engine, lock
from dockyard.reconcilers import default_set
from dockyard.spec import load
from dockyard.state.host import Host
from tests.storage_world import fake_proc, make_legacy_root

INIT_BINARY = b"\x7fELF dockerinit stand-in\n" * 64


FILES = ("directories", "pidfile", "dns", "storage", "migration", "tagstore", "containers")
FILES_TOO = ("graphdb", "exec")


def reconcilers() -> list[Any]:
    """Every reconciler that touches files; networking is off in these specs."""
    return [r for r in default_set() if r.name in FILES + FILES_TOO]


@dataclass
class World:
    base: Path

    @property
    def root(self) -> Path:
        return self.base / "docker"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def decoy(self) -> Path:
        return self.base / "decoy"

    @property
    def spec(self) -> Path:
        return self.base / "spec.yaml"

    @property
    def pidfile(self) -> Path:
        return self.base / "run" / "docker.pid"

    @property
    def proc(self) -> Path:
        return self.base / "proc"

    def run(self, dry_run: bool = False) -> engine.Outcome:
        """One run as `reconcile` makes it: observe and plan, or, under the lock, apply."""
        spec = load(self.spec)
        host = Host.for_spec(spec, proc=self.proc)
        recs = engine.order(reconcilers())
        if dry_run:
            return engine.Outcome(engine.plan(recs, spec, engine.observe(recs, spec, host)))
        engine.prepare_state_dir(host)
        with lock.exclusive(self.state / "lock", 0):
            the_plan = engine.plan(recs, spec, engine.observe(recs, spec, host))
            return engine.apply(the_plan, recs, spec, host)


def make_world(base: Path, driver: str = "vfs", legacy: bool = True, pidfile: str = "") -> World:
    world = World(base)
    (base / "etc").mkdir(parents=True)
    (base / "etc" / "resolv.conf").write_text("nameserver 192.0.2.53\n")
    (base / "run").mkdir()
    (base / "dockerinit").write_bytes(INIT_BINARY)
    make_decoy(world.decoy)
    if legacy:
        make_legacy_root(world.root)
    fake_proc(base, with_aufs=True)
    world.spec.write_text(
        f"version: 1\nroot: {world.root}\nstate_dir: {world.state}\n"
        f"pidfile: {pidfile or world.pidfile}\n"
        "preflight: {require_root: false}\nnetwork: {bridge: {name: none}}\n"
        f"storage: {{driver: {driver}}}\n"
        f"dns: {{host_resolv_conf: {base}/etc/resolv.conf}}\n"
        f"exec: {{init_path: {base}/dockerinit}}\n"
    )
    return world


def make_decoy(decoy: Path) -> None:
    """What an attacker would like dockyard to change: files of several modes, a directory
    that looks like a Docker root's, an image layer, a container."""
    for sub in ("etc", "vfs/dir", "graph/feed0000/layer", "containers/feedc0ffee/rw", "init"):
        (decoy / sub).mkdir(parents=True, exist_ok=True)
    (decoy / "etc" / "shadow").write_text("root:x:0:0\n")
    (decoy / "etc" / "shadow").chmod(0o600)
    (decoy / "precious").write_text("nothing may change me\n")
    (decoy / "precious").chmod(0o644)
    (decoy / "graph/feed0000/json").write_text('{"id": "feed0000"}')
    (decoy / "graph/feed0000/layer/secret").write_text("layer from outside\n")
    (decoy / "containers/feedc0ffee/config.json").write_text('{"Image": "feed0000"}')
    (decoy / "init" / "binary").write_bytes(b"\x7fELF decoy\n")
    (decoy / "init" / "binary").chmod(0o755)
    (decoy / "db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 84)


def snapshot(base: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under `base`, never followed: kind, mode, owner, and content or target."""
    out: dict[str, tuple[Any, ...]] = {"": _describe(base, os.lstat(base))}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            out[str(path.relative_to(base))] = _describe(path, os.lstat(path))
    return out


def _describe(path: Path, st: os.stat_result) -> tuple[Any, ...]:
    head = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    if stat.S_ISLNK(st.st_mode):
        return (*head, os.readlink(path))
    if stat.S_ISREG(st.st_mode):
        return (*head, hashlib.sha256(path.read_bytes()).hexdigest())
    return head
