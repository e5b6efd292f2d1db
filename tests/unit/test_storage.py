"""Storage: driver selection, graph migration (aufs and vfs layouts), crash safety, tag store,
link graph, containers. Files in temporary directories; only aufs's presence is faked."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.errors import DockyardError
from dockyard.reconcilers.containers import ContainerEntry, find
from dockyard.reconcilers.migration import with_driver
from dockyard.reconcilers.storage import select
from dockyard.reconcilers.storage.probes import Probe
from dockyard.spec import load_text
from tests.storage_world import (
    CONTAINERS,
    IMAGES,
    converge,
    digest,
    fake_proc,
    make_legacy_root,
    spec_text,
)

TESTS = Path(__file__).resolve().parents[1]


class Box:
    def __init__(self, base: Path, driver: str, extra: str = "") -> None:
        self.base, self.root = base, base / "docker"
        self.spec = base / "spec.yaml"
        self.spec.write_text(spec_text(base, driver, extra))
        self.proc = fake_proc(base, with_aufs=True)

    def converge(self, dry_run: bool = False):  # type: ignore[no-untyped-def]
        return converge(self.spec, self.proc, dry_run)


def layer_files(root: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """Each legacy layer's (and container rw's) content, keyed by layer id."""
    out = {i: digest(root / "graph" / i / "layer") for i in IMAGES}
    for cid in ("c0ffee000001", "c0ffee000002"):
        out[cid] = digest(root / "containers" / cid / "rw")
    return out


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    make_legacy_root(tmp_path / "docker")
    return tmp_path


def test_migration_into_aufs_keeps_every_file(legacy: Path) -> None:
    box = Box(legacy, "aufs")
    before = layer_files(box.root)
    tags = (box.root / "repositories").read_text()
    outcome = box.converge()
    assert outcome.ok, outcome.error
    for layer, files in before.items():
        assert digest(box.root / "aufs" / "diff" / layer) == files
        assert (box.root / "aufs" / "mnt" / layer).is_dir()
    assert (box.root / "aufs/layers/top00000").read_text() == "mid00000\nbase0000\n"
    assert (box.root / "aufs/layers/base0000").read_text() == ""
    assert (box.root / "aufs/layers/c0ffee000001").read_text() == (
        "c0ffee000001-init\ntop00000\nmid00000\nbase0000\n"
    )
    assert (box.root / "aufs/layers/c0ffee000001-init").read_text() == (
        "top00000\nmid00000\nbase0000\n"
    )
    assert os.readlink(box.root / "aufs/diff/c0ffee000001-init/etc/mtab") == "/proc/mounts"
    assert (box.root / "repositories-aufs").read_text() == tags
    assert json.loads((box.root / "graph/top00000/json").read_text())["parent"] == "mid00000"
    assert not list(box.root.glob(".dockyard-migration*"))
    assert box.converge(dry_run=True).plan.changes == []


def ancestry(image: str) -> list[str]:
    """`image` and its parents, base first."""
    out = [image]
    while IMAGES[out[0]]:
        out.insert(0, str(IMAGES[out[0]]))
    return out


EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of b""
INIT_LAYER = {
    **{d: ("dir", "0o755") for d in ("dev", "dev/pts", "dev/shm", "proc", "sys")},
    **{f: ("file 0o755", EMPTY) for f in (".dockerinit", ".dockerenv", "dev/console")},
    **{f"etc/{f}": ("file 0o755", EMPTY) for f in ("resolv.conf", "hosts", "hostname")},
    "etc/mtab": ("link", "/proc/mounts"),
}


def test_migration_into_vfs_makes_each_layer_a_whole_snapshot(legacy: Path) -> None:
    box = Box(legacy, "vfs")
    before = layer_files(box.root)
    assert box.converge().ok
    vfs = box.root / "vfs" / "dir"
    for image in IMAGES:  # parents' files, then the layer's own on top
        want: dict[str, tuple[str, str]] = {}
        for layer in ancestry(image):
            want.update(before[layer])
        assert digest(vfs / image) == want, image
        assert digest(box.root / "graph" / image / "layer-legacy") == before[image]
    for cid, (image, _) in CONTAINERS.items():
        assert digest(vfs / f"{cid}-init") == {**digest(vfs / image), **INIT_LAYER}
        assert digest(vfs / cid) == {**digest(vfs / f"{cid}-init"), **before[cid]}
        assert digest(box.root / "containers" / cid / "rw-legacy") == before[cid]
    assert (box.root / "repositories-vfs").exists()
    assert not list(box.root.glob("graph/*/layer")) and not list(vfs.glob(".dockyard*"))
    assert box.converge(dry_run=True).plan.changes == []


def test_vfs_image_layers_share_files_and_a_container_never_does(legacy: Path) -> None:
    """On a filesystem without reflinks (this one: ext4 or tmpfs), an image layer's files are
    hard links to its parent's; a container's are its own, so its writes reach no image."""
    box = Box(legacy, "vfs")
    assert box.converge().ok
    vfs = box.root / "vfs" / "dir"
    base = (vfs / "base0000/etc/base0000.conf").stat()
    for layer in ("mid00000", "top00000", "c0ffee000001-init"):
        assert (vfs / layer / "etc/base0000.conf").stat().st_ino == base.st_ino
    image_inodes = {p.stat().st_ino for i in IMAGES for p in (vfs / i).rglob("*") if p.is_file()}
    for cid in CONTAINERS:
        files = [p for p in (vfs / cid).rglob("*") if p.is_file() and not p.is_symlink()]
        assert files and all(p.stat().st_nlink == 1 for p in files)
        assert not {p.stat().st_ino for p in files} & image_inodes


def test_dry_run_moves_nothing_and_lists_each_move(legacy: Path) -> None:
    box = Box(legacy, "aufs")
    before = digest(legacy)
    the_plan = box.converge(dry_run=True).plan
    moves = [c for c in the_plan.changes if c.kind == "move"]
    assert ("graph/base0000/layer", {"step": 2, "path": "aufs/diff/base0000"}) in [
        (c.name, c.after) for c in moves
    ]
    assert len(moves) == 1 + len(IMAGES) + 2  # repositories, layers, container rw dirs
    assert digest(legacy) == before


def test_a_layer_whose_parent_is_missing_stays_where_it_is(legacy: Path) -> None:
    box = Box(legacy, "vfs")
    shutil.rmtree(box.root / "graph" / "mid00000")
    outcome = box.converge()
    assert outcome.ok, outcome.error
    assert (box.root / "graph/top00000/layer").is_dir()
    assert (box.root / "vfs/dir/fork0000").is_dir()
    assert (box.root / "containers/c0ffee000001/rw").is_dir()
    warnings = [n.message for n in outcome.plan.notes if n.severity == "warning"]
    assert "graph/top00000: its parent mid00000 is missing; left in place" in warnings
    assert (
        "containers/c0ffee000001/rw: its image top00000 cannot be migrated; left in place"
        in warnings
    )


def test_a_truncated_repositories_file_stops_everything(legacy: Path) -> None:
    box = Box(legacy, "vfs")
    text = (box.root / "repositories").read_text()
    (box.root / "repositories").write_text(text[: len(text) // 2])
    before = layer_files(box.root)
    outcome = box.converge()
    assert outcome.error is not None
    assert f"{box.root}/repositories: not valid JSON" in outcome.error
    assert "nothing is moved until it is repaired" in outcome.error
    assert set(outcome.failed) == {"migration", "tagstore", "graphdb"}
    assert layer_files(box.root) == before
    assert (box.root / "repositories").read_text() == text[: len(text) // 2]


def test_a_tag_store_docker_could_not_load_stops_the_migration_too(legacy: Path) -> None:
    """Valid JSON is not enough: the tag store is judged as Docker's TagStore loaded it."""
    box = Box(legacy, "vfs")
    (box.root / "repositories").write_text('{"Repositories": 5}')
    before = layer_files(box.root)
    outcome = box.converge()
    assert outcome.error is not None
    assert '"Repositories" is a number, not an object' in outcome.error
    assert "nothing is moved until it is repaired" in outcome.error
    assert layer_files(box.root) == before


def test_legacy_metadata_is_read_as_docker_read_it(legacy: Path) -> None:
    """A key in another case and bytes after a container's config are what Go's decoder took:
    such a container migrates, and the containers reconciler agrees it loads."""
    box = Box(legacy, "vfs")
    config = box.root / "containers/c0ffee000001/config.json"
    config.write_text('{"ID": "c0ffee000001", "image": "top00000", "Name": "/web"}\ntrailing')
    outcome = box.converge()
    assert outcome.ok, outcome.error
    assert (box.root / "vfs/dir/c0ffee000001/tmp/state").exists()
    assert json.loads(config.read_text().split("\n")[0])["Driver"] == "vfs"
    assert box.converge(dry_run=True).plan.changes == []


def run(spec: Path, proc: Path, crash_after: int | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    if crash_after is not None:
        env["DOCKYARD_CRASH_AFTER_STEPS"] = str(crash_after)
    return subprocess.run(
        [sys.executable, str(TESTS / "storage_world.py"), str(spec), str(proc)],
        env=env,
        capture_output=True,
        check=False,
    ).returncode


def test_a_migration_killed_at_any_point_is_finished_by_the_next_run(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    make_legacy_root(reference / "docker")
    ref = Box(reference, "aufs")
    planned = ref.converge(dry_run=True).plan.changes
    total_steps = len([c for c in planned if c.reconciler == "migration"])
    assert total_steps == 25  # repositories, 4 layers x 3, 2 containers x (init 3 + rw 3)
    assert run(ref.spec, ref.proc, None) == 0
    want = digest(ref.root)
    for k in range(1, 2 * total_steps, 3):
        base = tmp_path / f"k{k}"
        make_legacy_root(base / "docker")
        box = Box(base, "aufs")
        assert run(box.spec, box.proc, k) == -9, f"not killed after {k} events"
        assert run(box.spec, box.proc, None) == 0, f"not finished after a kill at {k}"
        assert digest(box.root) == want, f"differs after a kill at {k}"


def test_tag_store_is_created_valid_and_never_overwritten(tmp_path: Path) -> None:
    box = Box(tmp_path, "vfs")
    assert box.converge().ok
    assert json.loads((box.root / "repositories-vfs").read_text()) == {"Repositories": {}}
    (box.root / "repositories-vfs").write_text('{"Repositories": {"x": {}}')
    outcome = box.converge()
    assert outcome.error is not None and f"{box.root}/repositories-vfs: not valid JSON" in (
        outcome.error
    )
    assert (box.root / "repositories-vfs").read_text() == '{"Repositories": {"x": {}}'


@pytest.mark.parametrize("driver", ["aufs", "vfs"])
def test_link_graph_is_created_with_every_container_name(legacy: Path, driver: str) -> None:
    """Docker 1.x loads a container without a Driver only under aufs: the migration into vfs
    records the driver in each container's config.json, so the containers stay loadable."""
    configs = {
        cid: (legacy / f"docker/containers/{cid}/config.json").read_bytes() for cid in CONTAINERS
    }
    box = Box(legacy, driver)
    assert box.converge().ok
    for cid, raw in configs.items():
        now = (box.root / "containers" / cid / "config.json").read_bytes()
        assert now == (raw if driver == "aufs" else raw[:-1] + b',"Driver":"vfs"}')
    with sqlite3.connect(box.root / "linkgraph.db") as db:
        edges = sorted(db.execute("SELECT name, entity_id, parent_id FROM edge").fetchall())
    assert edges == [("/", "0", None), ("db", "c0ffee000002", "0"), ("web", "c0ffee000001", "0")]
    assert box.converge(dry_run=True).plan.changes == []


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (b"{}", b'{"Driver":"vfs"}'),
        (b' {"ID": "c1"}\n', b' {"ID": "c1","Driver":"vfs"}\n'),
        # Go reads the first value only, and a later key wins whatever its case.
        (b'{"driver": ""} {"x": 1}', b'{"driver": "","Driver":"vfs"} {"x": 1}'),
        (b'{"Driver":"vfs"}', b'{"Driver":"vfs"}'),
        (b'{"Name": "/caf\xe9"}', b'{"Name": "/caf\xe9","Driver":"vfs"}'),  # not UTF-8: kept
    ],
)
def test_the_driver_is_recorded_with_every_other_byte_kept(raw: bytes, want: bytes) -> None:
    assert with_driver(raw, "vfs") == want


def test_a_config_that_is_not_an_object_gets_no_driver() -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        with_driver(b"[1]", "vfs")


def test_a_corrupt_link_graph_is_moved_aside_and_made_anew(tmp_path: Path) -> None:
    box = Box(tmp_path, "vfs")
    assert box.converge().ok
    (box.root / "linkgraph.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    outcome = box.converge()
    assert outcome.ok, outcome.error
    assert (box.root / "linkgraph.db.corrupt-1").read_bytes().startswith(b"SQLite format 3")
    loud = [n.message for n in outcome.plan.notes if "IS DAMAGED" in n.message]
    assert loud and f"moved aside to {box.root}/linkgraph.db.corrupt-1" in loud[0]
    with sqlite3.connect(box.root / "linkgraph.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_name_of_a_vanished_container_is_reported_not_removed(legacy: Path) -> None:
    box = Box(legacy, "aufs")
    assert box.converge().ok
    shutil.rmtree(box.root / "containers" / "c0ffee000002")
    outcome = box.converge()
    assert "/db points to c0ffee000002, a container that no longer exists; left as it is" in [
        n.message for n in outcome.plan.notes
    ]
    with sqlite3.connect(box.root / "linkgraph.db") as db:
        assert db.execute("SELECT count(*) FROM edge WHERE name = 'db'").fetchone()[0] == 1


def test_broken_containers_are_listed_and_left_alone(legacy: Path) -> None:
    box = Box(legacy, "vfs")
    assert box.converge().ok
    (box.root / "containers/c0ffee000001/config.json").write_text("{")
    (box.root / "containers/feed00000003").mkdir()
    (box.root / "containers/feed00000003/config.json").write_text(
        '{"ID": "feed00000003", "Driver": "vfs"}'
    )
    warnings = [n.message for n in box.converge(dry_run=True).plan.notes]
    assert any(m.startswith("container c0ffee000001 is left alone: config.json:") for m in warnings)
    assert "container feed00000003 is left alone: its layer is missing from the vfs driver" in (
        warnings
    )


def test_containers_are_found_by_a_unique_prefix() -> None:
    entries = (ContainerEntry("abc123"), ContainerEntry("abd456"), ContainerEntry("ffe789"))
    assert find("abc", entries).id == "abc123"
    with pytest.raises(DockyardError, match="'ab' is ambiguous: it starts 2 container ids"):
        find("ab", entries)
    with pytest.raises(DockyardError, match="no container with an id starting 'zz'"):
        find("zz", entries)


def probes(**verdicts: str):  # type: ignore[no-untyped-def]
    asked: list[str] = []

    def run(driver: str) -> Probe:
        asked.append(driver)
        verdict = verdicts.get(driver, "not supported")
        return Probe(driver, verdict, f"{driver} says {verdict}")

    return run, asked


def test_selection_follows_docker_order() -> None:
    spec = load_text("version: 1\n")
    run, asked = probes(overlay="ok", vfs="ok", devicemapper="prerequisites missing")
    choice = select(spec, None, (), run)
    assert (choice.driver, asked) == ("overlay", ["aufs", "btrfs", "devicemapper", "overlay"])
    run, _ = probes(vfs="ok")
    assert select(spec, "vfs", (), run).why == "DOCKER_DRIVER in the environment"
    run, _ = probes(aufs="ok", vfs="ok")
    assert select(spec, None, ("aufs",), run).driver == "aufs"


def test_selection_errors_name_the_reason() -> None:
    spec = load_text("version: 1\nstorage: {driver: btrfs}\n")
    run, asked = probes(vfs="ok")
    assert select(spec, None, (), run).error == (
        "storage.driver=btrfs: not supported (btrfs says not supported)"
    )
    assert asked == ["btrfs"]
    auto = load_text("version: 1\n")
    run, _ = probes()
    assert select(auto, None, ("aufs", "overlay2"), run).error == (
        "aufs and overlay2 all hold data under /var/lib/docker; choose one with storage.driver "
        "(dockyard will not pick one and hide the other's images)"
    )
    run, _ = probes(aufs="error")
    assert select(auto, None, (), run).error == "aufs: aufs says error"
    selinux = load_text("version: 1\nselinux: true\nstorage: {priority: [btrfs, vfs]}\n")
    from dockyard.reconcilers.storage import StorageObserved, chosen

    observed = StorageObserved("/var/lib/docker", probes=(Probe("btrfs", "ok", "on btrfs"),))
    assert chosen(selinux, observed).error == ("btrfs does not support SELinux; set selinux: false")


def test_show_finds_a_container_by_prefix(legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dockyard.cli import main

    spec = legacy / "spec.yaml"
    spec.write_text(spec_text(legacy, "vfs"))
    assert main(["show", str(spec), "--container", "c0ffee000001", "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["container"]["id"] == "c0ffee000001" and doc["container"]["name"] == "web"
    assert main(["show", str(spec), "--container", "c0ffee"]) == 1
    assert capsys.readouterr().err == (
        "error: 'c0ffee' is ambiguous: it starts 2 container ids (c0ffee000001, c0ffee000002); "
        "give more characters\n"
    )


def test_a_current_dockerds_root_is_observed_not_converted(tmp_path: Path) -> None:
    """dockerd 20.10's layout: image/, buildkit/, containers in config.v2.json, its modes."""
    box = Box(tmp_path, "vfs")
    root = box.root
    for d in ("image/vfs/imagedb", "buildkit", "containers/abc123/mounts", "volumes", "vfs/dir"):
        (root / d).mkdir(parents=True)
    (root / "containers/abc123/config.v2.json").write_text('{"ID": "abc123", "Name": "/web"}')
    root.chmod(0o710)
    (root / "containers").chmod(0o710)
    (root / "volumes").chmod(0o701)
    outcome = box.converge()
    assert outcome.ok, outcome.error
    notes = [n.message for n in outcome.plan.notes]
    assert (
        notes.count(
            f"{root} is used by a current Docker daemon (image/, buildkit/, "
            "containers/abc123/config.v2.json): the Docker 1.x-only concerns (migration, "
            "tag store, link graph, containers) only observe it"
        )
        == 1
    )
    assert not [n for n in outcome.plan.notes if n.reconciler == "containers"]
    made = {c.name.removeprefix(f"{root}/") for c in outcome.applied}
    assert not made & {"repositories-vfs", "linkgraph.db"}
    assert {(root / d).stat().st_mode & 0o777 for d in ("", "containers")} == {0o710}
    assert (root / "volumes").stat().st_mode & 0o777 == 0o701
    assert box.converge(dry_run=True).plan.changes == []


# Issue 15: `show` names the backing filesystem and says "holds data" only of real data.

MOUNTINFO = (
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "45 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "69 47 7:0 / /mnt/old rw,relatime - ext3 /dev/loop0 rw\n"
    "70 47 0:40 / /mnt/a\\040b rw,relatime - tmpfs none rw\n"
    "garbage line\n"
)


def test_the_mount_table_names_an_ext_filesystem() -> None:
    """ext2, ext3 and ext4 share statfs's magic number: the mount of the device names it."""
    from dockyard.reconcilers.storage.probes import mount_type

    assert mount_type(MOUNTINFO, os.makedev(254, 0)) == "ext4"
    assert mount_type(MOUNTINFO, os.makedev(7, 0)) == "ext3"
    assert mount_type(MOUNTINFO, os.makedev(0, 40)) == "tmpfs"
    assert mount_type(MOUNTINFO, os.makedev(8, 1)) is None


STANDARD_MOUNTS = {"/", "/proc", "/sys", "/dev/shm", "/dev/pts", "/run", "/tmp", "/var", "/home"}
STANDARD_MOUNTS |= {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}


def test_statfs_names_each_filesystem_as_the_kernel_mounted_it() -> None:
    """Every mount of this machine whose type dockyard names: statfs(2)'s magic (ext by its
    mount) gives the type the kernel's mount table gives."""
    from dockyard.reconcilers.storage.probes import MAGIC, fs_type

    named = {n for n in MAGIC.values() if "/" not in n} | {"ext2", "ext3", "ext4"}
    top: dict[str, str] = {}  # mount point -> type of the mount on top
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        head, _, tail = line.partition(" - ")
        point = head.split()[4].replace("\\040", " ")
        top[point] = tail.split()[0]
    checked = {p: kind for p, kind in top.items() if kind in named and p in STANDARD_MOUNTS}
    assert checked, top
    assert {p: fs_type(Path(p)) for p in checked} == checked


def observed_with_data(root: Path) -> tuple[str, ...]:
    from dockyard.reconcilers.storage import Storage
    from dockyard.state.host import Host

    spec = load_text(f"version: 1\nroot: {root}\nstate_dir: {root.parent}/state\n")
    host = Host(root=root, state_dir=root.parent / "state", environ={"DOCKER_DRIVER": "vfs"})
    return Storage().observe(spec, host).with_data


def test_an_empty_layout_is_not_data(tmp_path: Path) -> None:
    """The directories dockyard (or Docker's first start) makes hold no data: choosing the
    driver by priority again is safe. Anything more in them is data."""
    root = tmp_path / "docker"
    for d in ("overlay2/l", "aufs/diff", "aufs/layers", "aufs/mnt", "btrfs/subvolumes", "vfs/dir"):
        (root / d).mkdir(parents=True)
    assert observed_with_data(root) == ()
    (root / "overlay2/l/ABCDEF").symlink_to("../abc/diff")
    assert observed_with_data(root) == ("overlay2",)
    (root / "overlay2/l/ABCDEF").unlink()
    (root / "overlay2/abc").mkdir()
    assert observed_with_data(root) == ("overlay2",)
    shutil.rmtree(root / "overlay2/abc")
    (root / "aufs/mnt").rmdir()
    (root / "aufs/mnt").write_text("")  # not the directory of the layout: something else
    assert observed_with_data(root) == ("aufs",)
    (root / "aufs/mnt").unlink()
    (root / "btrfs/repositories").write_text("{}")
    assert observed_with_data(root) == ("btrfs",)


def test_layout_modes_are_docker_1_6_s(tmp_path: Path) -> None:
    """aufs.Init made its directories 0755; vfs's were 0700 (as every Docker root dir)."""
    box = Box(tmp_path, "aufs")
    assert box.converge().ok
    modes = {
        d: oct((box.root / d).stat().st_mode & 0o777)
        for d in ("aufs", "aufs/diff", "aufs/layers", "aufs/mnt", "vfs", "vfs/dir")
    }
    assert modes == {
        "aufs": "0o755",
        "aufs/diff": "0o755",
        "aufs/layers": "0o755",
        "aufs/mnt": "0o755",
        "vfs": "0o700",
        "vfs/dir": "0o700",
    }


def test_devicemapper_options_for_another_driver_are_refused(tmp_path: Path) -> None:
    box = Box(tmp_path, "aufs", "storage: {driver: aufs, options: [dm.basesize=20G]}\n")
    box.spec.write_text(box.spec.read_text().replace("storage: {driver: aufs}\n", ""))
    outcome = box.converge()
    assert not outcome.ok
    assert [n.message for n in outcome.plan.errors] == [
        "storage.options (dm.basesize=20G) are devicemapper's, and the driver is aufs, which "
        "takes none (Docker 1.6's aufs ignored them); remove them or choose devicemapper"
    ]
    assert not (box.root / "aufs").exists()


def fake_dm_host(tmp: Path) -> tuple[Path, Path]:
    """/sys with thin-pool support, and a /dev whose mapper/pool is a block device."""
    sys_dir, dev = tmp / "sys", tmp / "dev"
    (sys_dir / "module/dm_thin_pool").mkdir(parents=True)
    (dev / "mapper").mkdir(parents=True)
    return sys_dir, dev


def test_devicemapper_probe_checks_what_its_options_need(tmp_path: Path) -> None:
    from dockyard.reconcilers.storage.probes import probe

    if shutil.which("dmsetup") is None or not Path("/dev/loop0").is_block_device():
        pytest.skip("needs dmsetup and a block device (/dev/loop0) to point at")
    sys_dir, dev = fake_dm_host(tmp_path)
    options = ["dm.thinpooldev=/dev/mapper/pool", "dm.datadev=/dev/null"]
    found = probe("devicemapper", tmp_path, Path("/proc"), options, sys_dir, dev)
    assert (found.verdict, found.reason) == (
        "error",
        f"dm.thinpooldev: {dev}/mapper/pool does not exist; "
        "dm.datadev: /dev/null is not a block device",
    )
    (dev / "mapper/pool").symlink_to("/dev/loop0")
    options = ["dm.thinpooldev=pool", "dm.datadev=/dev/loop0", "dm.metadatadev=/dev/loop0"]
    found = probe("devicemapper", tmp_path, Path("/proc"), options, sys_dir, dev)
    assert found.verdict == ("ok" if shutil.which("tune2fs") else "error")
    found = probe("devicemapper", tmp_path, Path("/proc"), [], sys_dir, dev)
    assert found.verdict == ("ok" if shutil.which("tune2fs") else "error")


def test_dm_fs_names_the_mkfs_docker_ran(tmp_path: Path) -> None:
    from dockyard.reconcilers.storage.probes import devicemapper_options

    lacking = devicemapper_options(["dm.fs=xfs"], tmp_path)
    assert lacking == ([] if shutil.which("mkfs.xfs") else ["dm.fs=xfs: mkfs.xfs is not installed"])
    assert devicemapper_options(["dm.fs=ext4"], tmp_path) == [
        f"dm.fs=ext4: {tool} is not installed"
        for tool in ("mkfs.ext4", "tune2fs")
        if shutil.which(tool) is None
    ]


def test_show_gives_the_options_as_devicemapper_held_them() -> None:
    from dockyard.reconcilers.base import Seen
    from dockyard.reconcilers.storage import Storage, StorageObserved

    options = [
        "dm.basesize=20G",
        "dm.loopdatasize=1tb",
        "dm.blocksize=512K",
        "dm.blkdiscard=False",
        "dm.thinpooldev=/dev/mapper/docker-pool",
        "dm.mountopt=nodiscard",
        "dm.mountopt=noatime",
        "dm.fs=xfs",
    ]
    spec = load_text(f"version: 1\nstorage: {{driver: devicemapper, options: {options}}}\n")
    seen = Seen()
    seen.add(
        "storage", StorageObserved("/var/lib/docker", probes=(Probe("devicemapper", "ok", "-"),))
    )
    assert Storage().explain(spec, seen)["options"] == {
        "dm.basesize": 20 << 30,
        "dm.loopdatasize": 1 << 40,
        "dm.blocksize": 512 << 10,
        "dm.blkdiscard": False,
        "dm.thinpooldev": "docker-pool",
        "dm.mountopt": ["nodiscard", "noatime"],
        "dm.fs": "xfs",
    }


def test_an_existing_layout_directory_keeps_its_mode(tmp_path: Path) -> None:
    box = Box(tmp_path, "aufs")
    (box.root / "aufs").mkdir(parents=True, mode=0o700)
    os.chmod(box.root / "aufs", 0o700)
    assert box.converge().ok
    assert (box.root / "aufs").stat().st_mode & 0o777 == 0o700
    assert (box.root / "aufs/diff").stat().st_mode & 0o777 == 0o755
    assert box.converge(dry_run=True).plan.changes == []
