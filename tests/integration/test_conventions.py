"""The command as scripts and people use it (issue 15): exit codes, drift, counts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.sandbox import Sandbox
from tests.integration.watching import Watcher, fights

pytestmark = pytest.mark.root


def test_a_set_e_script_around_plan_succeeds_with_changes_pending(box: Sandbox) -> None:
    script = 'set -e\n"$@" plan "$SPEC" >/dev/null\necho after the plan\n'
    argv = box.dockyard("SPEC")[:-1]  # ip netns exec NS python -m dockyard
    result = subprocess.run(
        ["sh", "-c", script, "sh", *argv],
        env={**box.env, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SPEC": str(box.spec_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "after the plan\n"), result.stderr
    assert box.reconcile("plan", "SPEC", "--detailed-exitcode").returncode == 2
    assert box.reconcile("down", "SPEC", "--dry-run").returncode == 0


def test_a_hand_edited_resolv_conf_is_drift_not_no_changes(box: Sandbox) -> None:
    assert box.reconcile("SPEC").returncode == 0
    target = Path(box.spec["root"]) / "resolv.conf"
    target.write_text("nameserver 192.0.2.99\n")

    plan = box.reconcile("plan", "SPEC", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stderr
    assert "No changes" not in plan.stdout
    assert plan.stdout.endswith(
        "Drift: 1 thing differs from the spec and dockyard leaves it as it is (see above).\n"
    )
    assert box.reconcile("plan", "SPEC").returncode == 0
    doc = json.loads(box.reconcile("plan", "SPEC", "-o", "json").stdout)
    assert doc["changes"] == []
    assert doc["drift"] == [
        {
            "reconciler": "dns",
            "severity": "warning",
            "message": f"{target} was edited by hand, left alone "
            "(reconcile --force-dns, or dns.force: true, writes it anew)",
        }
    ]
    assert box.reconcile("SPEC", "--detailed-exitcode").returncode == 2


def test_plan_and_apply_count_the_same_on_a_fresh_root(box: Sandbox) -> None:
    """state_dir and root share parents that do not exist yet: both are counted once."""
    fresh = box.base / "fresh"
    box.write_spec(
        {
            "version": 1,
            "root": str(fresh / "docker").removeprefix(str(box.base)),
            "state_dir": str(fresh / "dockyard").removeprefix(str(box.base)),
        }
    )
    plan = json.loads(box.reconcile("plan", "SPEC", "-o", "json").stdout)
    applied = json.loads(box.reconcile("SPEC", "-o", "json").stdout)
    assert applied["converged"] is True
    assert applied["summary"] == plan["summary"]
    assert len(applied["applied"]) == len(plan["changes"])
    assert {c["resource"] for c in applied["applied"]} == {c["resource"] for c in plan["changes"]}
    made = [c["resource"] for c in plan["changes"] if c["reconciler"] == "state_dir"]
    assert made == [f"directory {fresh / 'dockyard'}"]


def test_a_failed_apply_says_what_it_changed(box: Sandbox) -> None:
    """A refused concern after the state directory was made: not "nothing was changed"."""
    box.write_spec({"version": 1, "network": {"bridge": {"name": "none"}}})
    root = Path(box.spec["root"])
    root.write_text("not a directory\n")
    result = box.reconcile("SPEC")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "Error: nothing was changed but dockyard's own state directory (made for its lock): "
    ), result.stderr
    again = box.reconcile("SPEC")
    assert again.stderr.startswith("Error: nothing was changed: "), again.stderr


def test_show_prints_what_a_person_copies(box: Sandbox) -> None:
    """After an apply: every rule as iptables-save prints it, on one line; the container
    resolv.conf as a block; the root's filesystem by its real name; the empty layout dockyard
    made is not "data"; each storage probe once."""
    assert box.reconcile("SPEC").returncode == 0
    shown = box.reconcile("show", "SPEC")
    assert shown.returncode == 0, shown.stderr
    lines = [line.strip() for line in shown.stdout.splitlines()]
    backend = json.loads(box.reconcile("show", "SPEC", "-o", "json").stdout)["observed"]
    saved = box.run([f"iptables-{backend['iptables']['backend']}-save"], check=True).stdout
    rules = [line for line in saved.splitlines() if line.startswith("-A ") and "dockyard" in line]
    assert len(rules) >= 5
    assert [r for r in rules if r not in lines] == []

    target = Path(box.spec["root"]) / "resolv.conf"
    at = lines.index("current: |")
    assert lines[at + 1 : at + 1 + len(target.read_text().splitlines())] == (
        target.read_text().splitlines()
    )

    root = box.spec["root"]
    kind = box.run(["findmnt", "-n", "-o", "FSTYPE", "--target", root], check=True).stdout.strip()
    assert f"reason: {root} is on {kind}, not btrfs" in lines
    assert "ext2/ext3" not in shown.stdout
    assert "with_data: []" in lines and "already holds data" not in shown.stdout
    for driver in ("aufs", "btrfs", "devicemapper", "overlay2", "overlay", "vfs"):
        assert lines.count(f"- driver: {driver}") == 1, driver


def test_down_speaks_of_teardown(box: Sandbox) -> None:
    """Each line says why it goes, not where it stood; the summary counts what was removed;
    a second down says there is nothing left."""
    box.write_spec(
        {
            "version": 1,
            "network": {
                "published_ports": [
                    {"host_port": 8080, "container_ip": "172.17.0.2", "container_port": 80}
                ]
            },
        }
    )
    assert box.reconcile("SPEC").returncode == 0
    dry = box.reconcile("down", "SPEC", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    removals = [line for line in dry.stdout.splitlines() if line.startswith("  - ")]
    assert len(removals) == 17
    reasons = {line.rsplit("  (", 1)[1] for line in removals}
    assert reasons == {
        "owned by dockyard)",
        "empty, and no rule but dockyard's jumps to it)",
        "dockyard created it)",
    }
    assert "position" not in dry.stdout and "not in the spec" not in dry.stdout
    assert dry.stdout.endswith("\nPlan: 17 to remove.\n")

    down = box.reconcile("down", "SPEC")
    assert down.returncode == 0, down.stderr
    assert down.stdout.endswith("\nPlan: 17 to remove.\nDown complete: 17 removed; verified.\n")
    again = box.reconcile("down", "SPEC")
    assert (again.returncode, again.stdout) == (0, "Nothing of dockyard's is left on this host.\n")
    dry = box.reconcile("down", "SPEC", "--dry-run")
    assert (dry.returncode, dry.stdout) == (0, "Nothing of dockyard's is left on this host.\n")


def test_a_watch_logs_drift_once_and_when_it_clears(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    w = watcher(count_passes=True)
    w.ready()
    target = Path(box.spec["root"]) / "resolv.conf"
    written = target.read_text()
    target.write_text("nameserver 192.0.2.99\n")
    drift = w.wait_for(lambda e: e["event"] == "drift", "drift event")
    assert (drift["reconciler"], drift["severity"]) == ("dns", "warning")
    assert drift["message"].startswith(f"{target} was edited by hand, left alone")
    w.wait_passes(3)
    target.write_text(written)  # as dockyard wrote it: no longer drift
    cleared = w.wait_for(lambda e: e["event"] == "drift-cleared", "drift cleared")
    assert cleared["message"] == drift["message"]
    w.wait_passes(2)
    events = [e["event"] for e in w.drained()]
    assert (events.count("drift"), events.count("drift-cleared")) == (1, 1)
    assert fights(w.seen) == []  # drift is left alone, never "corrected"
    assert w.stop() == 0
