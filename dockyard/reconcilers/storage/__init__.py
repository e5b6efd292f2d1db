"""storage: the graph driver Docker would pick, and its directories under the root.

Docker's order: DOCKER_DRIVER in the environment; else `storage.driver`; else a driver whose
directory already holds data (a host never silently switches driver and "loses" its images);
else the first of `storage.priority` whose probe succeeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from dockyard.change import Change, Note
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.storage.probes import (
    NEXT,
    Probe,
    existing_ancestor,
    filesystems,
    fs_type,
    probe,
)
from dockyard.spec import Spec, storage_options
from dockyard.state.bootfacts import boot_key
from dockyard.state.host import Host
from dockyard.state.safepath import Tree

DRIVERS = ("aufs", "btrfs", "devicemapper", "overlay2", "overlay", "vfs")
LAYOUT: dict[str, tuple[str, ...]] = {
    "aufs": ("diff", "layers", "mnt"),
    "btrfs": ("subvolumes",),
    "devicemapper": ("metadata", "mnt"),
    "overlay2": ("l",),
    "overlay": (),
    "vfs": ("dir",),
}
SAME_PROBE = {"overlay": "overlay2", "overlay2": "overlay"}
VOLUMES_DRIVER = "vfs"  # Docker 1.x kept volumes in a vfs graph, whatever the images used
MODE = "0700"
# The directories Docker's drivers made 0755 (aufs.Init, overlay's Init, devicemapper's mounts,
# in Docker 1.6); the rest it made 0700 (vfs, btrfs, devicemapper's metadata; overlay2 in 1.12).
OPEN_DIRS = ("aufs", "aufs/diff", "aufs/layers", "aufs/mnt", "overlay", "devicemapper/mnt")


def mode(rel: str) -> str:
    return "0755" if rel in OPEN_DIRS else MODE


MOUNTED = ("overlay2", "overlay")  # probes that make a test mount: their success is kept
KEPT = " (found earlier this boot)"


@dataclass(frozen=True)
class StorageObserved:
    root: str
    env_driver: str | None = None
    with_data: tuple[str, ...] = ()
    probes: tuple[Probe, ...] = ()
    present: tuple[str, ...] = ()  # layout directories that exist, relative to the root


@dataclass(frozen=True)
class Choice:
    driver: str | None
    why: str
    error: str | None = None


def select(
    spec: Spec, env_driver: str | None, with_data: tuple[str, ...], run: Callable[[str], Probe]
) -> Choice:
    """Pure but for `run`, which answers a driver's probe; only the probes needed are asked."""

    def required(driver: str, why: str, field: str) -> Choice:
        if driver not in DRIVERS:
            return Choice(None, why, f"{field}={driver}: no such storage driver")
        found = run(driver)
        if found.verdict != "ok":
            return Choice(None, why, f"{field}={driver}: {found.verdict} ({found.reason})")
        return Choice(driver, why)

    if env_driver:
        return required(env_driver, "DOCKER_DRIVER in the environment", "DOCKER_DRIVER")
    if spec.storage.driver != "auto":
        return required(spec.storage.driver, "storage.driver in the spec", "storage.driver")
    if len(with_data) > 1:
        dirs = " and ".join(with_data)
        return Choice(
            None,
            "data of several drivers",
            f"{dirs} all hold data under {spec.root}; choose one with storage.driver "
            "(dockyard will not pick one and hide the other's images)",
        )
    if with_data:
        return required(with_data[0], f"{with_data[0]} already holds data", "driver with data")
    tried = []
    for driver in spec.storage.priority:
        found = run(driver)
        if found.verdict == "ok":
            return Choice(driver, "first of storage.priority whose probe succeeds")
        if found.verdict not in NEXT:
            return Choice(None, "storage.priority", f"{driver}: {found.reason}")
        tried.append(f"{driver}: {found.verdict}")
    return Choice(
        None, "storage.priority", "no driver of storage.priority works: " + "; ".join(tried)
    )


def chosen(spec: Spec, obs: StorageObserved) -> Choice:
    probes = {p.driver: p for p in obs.probes}
    choice = select(spec, obs.env_driver, obs.with_data, probes.__getitem__)
    if choice.driver == "btrfs" and spec.selinux:
        return Choice(None, choice.why, "btrfs does not support SELinux; set selinux: false")
    return choice


def wanted_dirs(driver: str) -> list[str]:
    dirs = [driver, *(f"{driver}/{sub}" for sub in LAYOUT[driver])]
    if driver != VOLUMES_DRIVER:
        dirs += [VOLUMES_DRIVER, *(f"{VOLUMES_DRIVER}/{sub}" for sub in LAYOUT[VOLUMES_DRIVER])]
    return dirs


def _holds_data(tree: Tree, driver: str) -> bool:
    """A driver's directory that holds more than the empty layout dockyard (or Docker at its
    first start) makes there: an `overlay2` with only an empty `l` holds no data. One that is
    not a directory is `Unsafe`."""
    tree.expect(driver, "directory")
    return any(
        name not in LAYOUT[driver]
        or tree.stat(f"{driver}/{name}").kind != "directory"
        or tree.listdir(f"{driver}/{name}")
        for name in tree.listdir(driver) or ()
    )


def kept_probe(driver: str, host: Host, options: Sequence[str] = ()) -> Probe:
    """`probe`, but a test mount that succeeded earlier this boot, on the same kernel and the
    same filesystem under the root, is not made again (state/bootfacts.py). What is cheap to
    check is checked every time: overlay in /proc/filesystems, the filesystem's type."""
    if driver not in MOUNTED or "overlay" not in filesystems(host.proc):
        return probe(driver, host.root, host.proc, options, host.sys)
    try:
        where = existing_ancestor(host.root)
        key = boot_key(host.proc, fs_type(where, host.proc), where.stat().st_dev)
    except OSError:
        key = None
    name = f"storage probe {driver}"
    kept = host.boot_facts.get(name, key) if key else None
    if kept is not None and isinstance(kept.get("reason"), str):
        return Probe(driver, "ok", kept["reason"] + KEPT)
    found = probe(driver, host.root, host.proc, options, host.sys)
    if key and found.verdict == "ok":
        host.boot_facts.put(name, key, {"reason": found.reason})
    return found


class Storage:
    name: ClassVar[str] = "storage"
    after: ClassVar[tuple[str, ...]] = ("directories",)
    observation: ClassVar[type] = StorageObserved

    def observe(self, spec: Spec, host: Host) -> StorageObserved:
        root = host.root
        env_driver = host.environ.get("DOCKER_DRIVER") or None
        # vfs is never "prior data": Docker keeps volumes in it whatever the images use.
        tree = host.fs
        with_data = tuple(d for d in DRIVERS if d != VOLUMES_DRIVER and _holds_data(tree, d))
        probes: dict[str, Probe] = {}

        def run(driver: str) -> Probe:
            if driver not in probes:
                twin = SAME_PROBE.get(driver)
                if twin in probes:  # overlay and overlay2 make the same test mount
                    probes[driver] = replace(probes[twin], driver=driver)
                else:
                    probes[driver] = kept_probe(driver, host, spec.storage.options)
            return probes[driver]

        choice = select(spec, env_driver, with_data, run)
        if host.thorough:
            for driver in DRIVERS:
                run(driver)
        present: tuple[str, ...] = ()
        if choice.driver:
            present = tuple(
                d
                for d in wanted_dirs(choice.driver)
                if tree.expect(d, "directory").kind == "directory"
            )
        ran = tuple(probes[d] for d in DRIVERS if d in probes)
        return StorageObserved(str(root), env_driver, with_data, ran, present)

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        obs = seen[StorageObserved]
        choice = chosen(spec, obs)
        if choice.driver is None:
            return []
        return [
            Change(
                self.name,
                "directory",
                f"{obs.root}/{d}",
                "create",
                None,
                {"mode": mode(d)},
                f"layout of {d.split('/')[0]}",
                claim=True,
            )
            for d in wanted_dirs(choice.driver)
            if d not in obs.present
        ]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        choice = chosen(spec, seen[StorageObserved])
        if choice.error:
            return [Note(self.name, "error", choice.error)]
        refused = choice.driver and storage_options.for_driver(choice.driver, spec.storage.options)
        return [Note(self.name, "error", refused)] if refused else []

    def explain(self, spec: Spec, seen: Seen) -> dict[str, Any]:
        obs = seen[StorageObserved]
        choice = chosen(spec, obs)
        # The probes are in the observation, listed once there.
        return {
            "driver": choice.driver,
            "because": choice.error or choice.why,
            "options": storage_options.parsed(spec.storage.options),
        }

    def apply(self, change: Change, host: Host) -> None:
        rel = str(Path(change.name).relative_to(host.root))
        if change.action == "delete":
            host.fs.rmdir(rel)  # only the undo of a create: never a directory with content
            return
        host.fs.mkdir(rel, int(str((change.after or {}).get("mode") or MODE), 8))
