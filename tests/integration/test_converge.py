"""The core reconcilers against the real kernel: a fresh network namespace and a temporary root
for every test, deleted by name afterwards."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.sandbox import Sandbox

pytestmark = pytest.mark.root

SUBDIRS = ["containers", "graph", "volumes", "init", "execdriver", "execdriver/native", "tmp"]


def tree(base: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for p in sorted(base.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(base))] = (st.st_mode, st.st_uid, st.st_gid)
    return out


def root_of(box: Sandbox) -> Path:
    return Path(box.spec["root"])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_plan_on_a_fresh_host_lists_changes_and_touches_nothing(box: Sandbox) -> None:
    before = tree(box.base)
    result = box.reconcile("plan", "SPEC")
    assert result.returncode == 0, result.stderr  # Terraform's convention: success is 0
    assert f"+ directory {root_of(box)}  (does not exist)" in result.stdout
    assert "~ sysctl net.ipv4.ip_forward  (forwarding is off; containers cannot reach out)" in (
        result.stdout
    )
    assert result.stdout.rstrip().endswith("Plan: 31 to create, 1 to update, 0 to delete.")
    assert tree(box.base) == before
    assert box.sysctl("net.ipv4.ip_forward") == "0"


def test_dry_run_is_the_plan(box: Sandbox) -> None:
    plan = box.reconcile("plan", "SPEC", "-o", "json")
    dry = box.reconcile("SPEC", "--dry-run", "-o", "json")
    assert plan.returncode == dry.returncode == 0
    assert json.loads(plan.stdout) == json.loads(dry.stdout)


def test_apply_converges_and_a_second_run_changes_nothing(box: Sandbox) -> None:
    result = box.reconcile("SPEC", "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    assert "Apply complete: 31 created, 1 updated, 0 deleted; verified." in result.stdout
    root = root_of(box)
    for sub in ["", *SUBDIRS]:
        assert (root / sub).is_dir()
        assert mode(root / sub) == 0o700
    assert box.sysctl("net.ipv4.ip_forward") == "1"

    again = box.reconcile("plan", "SPEC")
    assert (again.returncode, again.stdout) == (0, "No changes. The host matches the spec.\n")
    assert box.reconcile("SPEC", "--detailed-exitcode").returncode == 0


def test_json_plan_names_every_change(box: Sandbox) -> None:
    doc = json.loads(box.reconcile("plan", "SPEC", "-o", "json").stdout)
    assert doc["format_version"] == 1
    assert doc["summary"] == {"create": 31, "update": 1, "delete": 0}
    assert next(c for c in doc["changes"] if c["reconciler"] == "ip_forward") == {
        "reconciler": "ip_forward",
        "resource": "sysctl net.ipv4.ip_forward",
        "action": "update",
        "before": {"value": 0},
        "after": {"value": 1},
        "reason": "forwarding is off; containers cannot reach out",
    }


def test_hand_made_drift_is_detected_and_corrected(box: Sandbox) -> None:
    assert box.reconcile("SPEC").returncode == 0
    graph = root_of(box) / "graph"
    graph.chmod(0o755)
    box.set_sysctl("net.ipv4.ip_forward", "0")

    plan = box.reconcile("plan", "SPEC", "--detailed-exitcode")
    assert plan.returncode == 2
    assert f"~ directory {graph}  (mode drifted)\n      mode: 0755 -> 0700" in plan.stdout
    assert "value: 0 -> 1" in plan.stdout

    assert box.reconcile("SPEC").returncode == 0
    assert mode(graph) == 0o700
    assert box.sysctl("net.ipv4.ip_forward") == "1"
    assert box.reconcile("plan", "SPEC", "--detailed-exitcode").returncode == 0


def test_ip_forward_is_set_in_the_namespace_only(box: Sandbox) -> None:
    host_value = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    assert box.reconcile("SPEC").returncode == 0
    assert box.sysctl("net.ipv4.ip_forward") == "1"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_value


def test_ip_forward_false_leaves_the_setting_as_it_is(box: Sandbox) -> None:
    """Docker's --ip-forward=false: a host that forwards for other reasons keeps forwarding,
    one that does not is not made to; `disable` turns it off."""
    box.write_spec({"version": 1, "network": {"ip_forward": False}})
    for value in ("1", "0"):
        box.set_sysctl("net.ipv4.ip_forward", value)
        result = box.reconcile("SPEC")
        assert result.returncode == 0, result.stderr
        assert "net.ipv4.ip_forward" not in result.stdout
        assert box.sysctl("net.ipv4.ip_forward") == value
    box.set_sysctl("net.ipv4.ip_forward", "1")
    box.write_spec({"version": 1, "network": {"ip_forward": "disable"}})
    result = box.reconcile("SPEC")
    assert result.returncode == 0, result.stderr
    assert (
        "~ sysctl net.ipv4.ip_forward  (network.ip_forward: disable turns forwarding off)"
        in result.stdout
    )
    assert box.sysctl("net.ipv4.ip_forward") == "0"


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_stale_pid_file_is_removed(box: Sandbox) -> None:
    pidfile = Path(box.spec["pidfile"])
    pid = dead_pid()
    pidfile.write_text(f"{pid}\n")
    plan = box.reconcile("plan", "SPEC")
    assert f"- pidfile {pidfile}  (stale: pid {pid} is not running)" in plan.stdout
    assert pidfile.exists()
    assert box.reconcile("SPEC").returncode == 0
    assert not pidfile.exists()


def test_live_pid_file_is_reported_and_left_alone(box: Sandbox) -> None:
    pidfile = Path(box.spec["pidfile"])
    with subprocess.Popen(["sleep", "30"]) as holder:
        try:
            pidfile.write_text(f"{holder.pid}\n")
            result = box.reconcile("SPEC")
            assert result.returncode == 0, result.stderr
            assert f"Note: {pidfile} is held by live pid {holder.pid} (sleep); left alone" in (
                result.stdout
            )
            assert pidfile.read_text() == f"{holder.pid}\n"
        finally:
            holder.kill()


def test_failed_preflight_stops_apply_but_plan_shows_it(box: Sandbox) -> None:
    box.write_spec({"version": 1, "preflight": {"min_kernel": "999.0"}})
    before = tree(box.base)
    plan = box.reconcile("plan", "SPEC")
    assert plan.returncode == 1
    assert "Error: kernel" in plan.stdout and "older than preflight.min_kernel 999.0" in plan.stdout
    assert "Plan: 31 to create, 1 to update, 0 to delete." in plan.stdout

    apply = box.reconcile("SPEC")
    assert apply.returncode == 1
    assert apply.stdout == ""
    assert apply.stderr.startswith("Error: nothing was changed: preflight: kernel ")
    assert "Traceback" not in apply.stderr
    assert tree(box.base) == before
    assert box.sysctl("net.ipv4.ip_forward") == "0"


def test_a_file_where_a_directory_belongs_stops_its_concern_only(box: Sandbox) -> None:
    root = root_of(box)
    root.mkdir(parents=True)
    (root / "graph").write_text("precious")
    before = tree(root)
    result = box.reconcile("SPEC", "-o", "json")
    assert result.returncode == 1
    failed = json.loads(result.stdout)["failed"]
    assert failed["directories"] == (
        f"directories: {root}/graph is a regular file, not a directory; left alone, never followed"
    )
    assert {"dns", "storage", "tagstore"} <= set(failed)  # they come after directories
    assert tree(root) == before
    # The network does not come after directories: it converged.
    assert box.run(["ip", "link", "show", "docker0"]).returncode == 0
    assert box.sysctl("net.ipv4.ip_forward") == "1"


def test_symlink_out_of_the_root_is_not_followed(box: Sandbox, tmp_path: Path) -> None:
    root = root_of(box)
    root.mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir(mode=0o755)
    (root / "volumes").symlink_to(outside)
    result = box.reconcile("SPEC")
    assert result.returncode == 1
    assert (
        f"{root}/volumes is a symlink (to {outside}), not a directory; left alone, never followed"
        in result.stderr
    )
    assert mode(outside) == 0o755


def test_a_symlinked_root_is_used_through_its_real_path(box: Sandbox, tmp_path: Path) -> None:
    real = tmp_path / "big-disk" / "docker"
    real.mkdir(parents=True)
    root = root_of(box)
    root.symlink_to(real)
    assert box.reconcile("SPEC").returncode == 0
    assert root.is_symlink()
    for sub in SUBDIRS:
        assert (real / sub).is_dir()
    assert mode(real) == 0o700


def hold_lock(box: Sandbox, seconds: float) -> subprocess.Popen[str]:
    """Another process holding dockyard's lock, as a concurrent reconcile would."""
    state = Path(box.spec["state_dir"])
    state.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom dockyard.lock import exclusive\n"
        f"with exclusive(Path({str(state / 'lock')!r}), 0):\n"
        "    print('held', flush=True)\n"
        f"    time.sleep({seconds})\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    return holder


def test_lock_held_longer_than_the_timeout_names_the_holder(box: Sandbox) -> None:
    holder = hold_lock(box, 30)
    try:
        result = box.reconcile("SPEC", "--lock-timeout", "0.5")
        assert result.returncode == 1
        assert f"is held by pid {holder.pid} (another reconcile); gave up after 0.5s" in (
            result.stderr
        )
        assert not root_of(box).exists()
    finally:
        holder.kill()
        holder.wait()


def test_lock_held_briefly_is_waited_for(box: Sandbox) -> None:
    holder = hold_lock(box, 3.0)  # longer than reconcile takes to start, so it must wait
    try:
        result = box.reconcile("SPEC", "--lock-timeout", "30")
        assert result.returncode == 0, result.stderr
        assert f"waiting for {box.spec['state_dir']}/lock, held by pid {holder.pid}" in (
            result.stderr
        )
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()


def test_concurrent_applies_never_interleave(box: Sandbox) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    argv = ["ip", "netns", "exec", box.ns, sys.executable, "-m", "dockyard", str(box.spec_path)]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(4)
    ]
    results: list[Any] = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert [code for _, _, code in results] == [0, 0, 0, 0], results
    outs = [out for out, _, _ in results]
    assert sum("Apply complete: 31 created, 1 updated" in o for o in outs) == 1, results
    assert sum(o == "No changes. The host matches the spec.\n" for o in outs) == 3, results


def test_apply_executes_exactly_the_plan(box: Sandbox) -> None:
    """The plan is the apply: with work for every reconciler, the changes apply carries out are
    the changes the dry run printed, in the same order."""
    root = root_of(box)
    root.mkdir(parents=True, mode=0o755)
    Path(box.spec["pidfile"]).write_text(f"{dead_pid()}\n")
    planned = json.loads(box.reconcile("SPEC", "--dry-run", "-o", "json").stdout)
    reconcilers = {c["reconciler"] for c in planned["changes"]}
    assert reconcilers == {
        "state_dir",
        "directories",
        "pidfile",
        "bridge",
        "iptables",
        "ip_forward",
        "dns",
        "storage",
        "tagstore",
        "graphdb",
    }
    applied = json.loads(box.reconcile("SPEC", "-o", "json").stdout)
    assert applied["converged"] is True
    assert applied["applied"] == planned["changes"]
    assert applied["changes"] == planned["changes"]
