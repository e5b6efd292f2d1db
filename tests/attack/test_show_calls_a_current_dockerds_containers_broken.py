"""On a data root a current dockerd uses, the Docker 1.x-only concerns observe only and say so
once (issue: "modern containers (config.v2.json) are each reported as broken"). `plan` no longer
warns about each container, but `reconcile show` still lists every one of dockerd's containers
under `broken` ("config.json: missing"), as if Docker 1.x had failed to load them."""

from __future__ import annotations

from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.containers import ContainerEntry, Containers, ContainersObserved
from dockyard.reconcilers.directories import DirectoriesObserved, modern_root
from dockyard.reconcilers.migration import MigrationObserved
from dockyard.reconcilers.storage import StorageObserved
from dockyard.reconcilers.storage.probes import Probe
from dockyard.spec import load_text

ROOT = "/var/lib/docker"
CID = "336e6b08ed71be515dece0600f944d83ad14c02fb42101fa9745b802d9a227fc"


def seen(modern: tuple[str, ...]) -> Seen:
    s = Seen()
    s.add("directories", DirectoriesObserved(ROOT, "0:0", (), (), modern))
    ok = Probe("overlay2", "ok", "overlay mounts")
    s.add("storage", StorageObserved(ROOT, with_data=("overlay2",), probes=(ok,)))
    s.add("migration", MigrationObserved(ROOT, container_ids=(CID,)))
    entry = ContainerEntry(CID, problem="config.json: missing")
    s.add("containers", ContainersObserved((entry,)))
    return s


def test_show_on_a_current_dockerds_root_lists_no_container_as_broken() -> None:
    spec = load_text("version: 1\n")
    current = seen(("image/", f"containers/{CID[:12]}/config.v2.json"))
    shown = Containers().explain(spec, current)
    assert shown == {"count": 1, "observed_only": modern_root(current)}


def test_show_on_a_docker_1_root_still_lists_them() -> None:
    spec = load_text("version: 1\n")
    shown = Containers().explain(spec, seen(()))
    assert shown["broken"] == {CID: "config.json: missing"}
