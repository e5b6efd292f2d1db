"""A legacy Docker root to migrate, and a small runner of the storage reconcilers, shared by
the storage tests (and run as a subprocess by the crash tests)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from dockyard import engine
from dockyard.reconcilers.containers import Containers
from dockyard.reconcilers.directories import Directories
from dockyard.reconcilers.graphdb import GraphDb
from dockyard.reconcilers.migration import Migration
from dockyard.reconcilers.storage import Storage
from dockyard.reconcilers.tagstore import TagStore
from dockyard.spec import load
from dockyard.state.host import Host

IMAGES = {  # id -> parent: a chain of three, and a fork off the base
    "base0000": None,
    "mid00000": "base0000",
    "top00000": "mid00000",
    "fork0000": "base0000",
}
CONTAINERS = {"c0ffee000001": ("top00000", "web"), "c0ffee000002": ("fork0000", "db")}


def make_legacy_root(root: Path, images: dict[str, str | None] = IMAGES) -> None:
    for n, (image, parent) in enumerate(images.items()):
        layer = root / "graph" / image / "layer"
        (layer / "etc").mkdir(parents=True)
        (layer / "etc" / f"{image}.conf").write_text(f"layer {image}\n" * (n + 1))
        script = layer / "usr" / "bin" / f"run-{image}"
        script.parent.mkdir(parents=True)
        script.write_text("#!/bin/sh\necho hi\n")
        script.chmod(0o755)
        (layer / "etc" / "secret").write_text(image)
        (layer / "etc" / "secret").chmod(0o600)
        meta = {"id": image, "parent": parent} if parent else {"id": image}
        (root / "graph" / image / "json").write_text(json.dumps(meta))
    for cid, (image, name) in CONTAINERS.items():
        rw = root / "containers" / cid / "rw"
        (rw / "tmp").mkdir(parents=True)
        (rw / "tmp" / "state").write_text(f"container {cid}\n")
        config = {"ID": cid, "Image": image, "Name": f"/{name}"}
        (root / "containers" / cid / "config.json").write_text(json.dumps(config))
    repositories = {"Repositories": {"app": {"latest": "top00000", "fork": "fork0000"}}}
    (root / "repositories").write_text(json.dumps(repositories))


def digest(base: Path) -> dict[str, tuple[str, str]]:
    """Every entry under `base`: its kind and mode, and the sha256 of files, target of links."""
    out = {}
    for path in sorted(base.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(base))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", oct(stat.S_IMODE(st.st_mode)))
        else:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            out[rel] = (f"file {oct(stat.S_IMODE(st.st_mode))}", sha)
    return out


def spec_text(base: Path, driver: str, extra: str = "") -> str:
    return (
        f"version: 1\nroot: {base}/docker\nstate_dir: {base}/state\npidfile: {base}/docker.pid\n"
        "preflight: {require_root: false}\nnetwork: {bridge: {name: none}}\n"
        f"storage: {{driver: {driver}}}\n{extra}"
    )


def fake_proc(base: Path, with_aufs: bool) -> Path:
    """/proc with only `filesystems` in it: the one thing an aufs probe reads. aufs cannot be
    loaded on this kernel, so its presence is the one thing these tests fake."""
    proc = base / "proc"
    proc.mkdir(parents=True, exist_ok=True)
    names = ["nodev\tproc", "\text4", "nodev\toverlay"] + (["nodev\taufs"] if with_aufs else [])
    (proc / "filesystems").write_text("\n".join(names) + "\n")
    return proc


def reconcilers() -> list[Any]:
    return [Directories(), Storage(), Migration(), TagStore(), Containers(), GraphDb()]


def converge(spec_path: Path, proc: Path, dry_run: bool = False) -> engine.Outcome:
    spec = load(spec_path)
    host = Host.for_spec(spec, proc=proc)
    recs = engine.order(reconcilers())
    the_plan = engine.plan(recs, spec, engine.observe(recs, spec, host))
    if dry_run:
        return engine.Outcome(the_plan)
    engine.prepare_state_dir(host)
    return engine.apply(the_plan, recs, spec, host)


if __name__ == "__main__":
    outcome = converge(Path(sys.argv[1]), Path(sys.argv[2]))
    print(outcome.error or "ok")
    raise SystemExit(0 if outcome.ok else 1)
