"""`make dist` and what is built from it: the single file on a Python that has no dockyard,
the role dockyard.host.install (from the built collection archive) with the single file and
with the wheel, and the module talking to the installed program through its JSON output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.fleet import REPO, Ansible, Run, fleet
from devtools.systemd_box import SystemdBox, systemd_box

pytestmark = pytest.mark.root

EXAMPLE = REPO / "examples/docker-default.yaml"


def clean_python() -> str:
    """A Python that is not this virtual environment and cannot import dockyard."""
    for candidate in ("/usr/bin/python3", str(Path(sys.base_prefix) / "bin/python3")):
        if Path(candidate).exists():
            return candidate
    pytest.fail("no system Python 3")


@dataclass
class Dist:
    wheel: Path
    zipapp: Path
    collection: Path


@pytest.fixture(scope="module")
def dist() -> Iterator[Dist]:
    with tempfile.TemporaryDirectory(prefix="dky-dist-") as tmp:
        subprocess.run(["make", "-s", "-C", str(REPO), "dist", f"DIST={tmp}"], check=True)
        out = Path(tmp)
        yield Dist(
            next(out.glob("dockyard-*.whl")),
            out / "reconcile.pyz",
            next(out.glob("dockyard-host-*.tar.gz")),
        )


def test_the_single_file_runs_on_a_python_without_dockyard(dist: Dist, tmp_path: Path) -> None:
    python = clean_python()
    assert subprocess.run([python, "-I", "-c", "import dockyard"], check=False).returncode != 0
    env = {"PATH": "/usr/bin:/bin", "PEX_ROOT": str(tmp_path / "pex")}
    run = subprocess.run(
        [python, "-I", str(dist.zipapp), "validate", str(EXAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{EXAMPLE}: valid\n"
    # As a program too: it finds a Python by itself.
    direct = subprocess.run(
        [str(dist.zipapp), "--version"], capture_output=True, text=True, env=env, check=False
    )
    assert direct.stdout == "dockyard 0.1.0\n", direct.stderr


class Installer:
    """The role, run by ansible-playbook on this machine, into a temporary directory only."""

    def __init__(self, dist: Dist, base: Path, python: str = sys.executable) -> None:
        self.base = base
        self.ansible = Ansible(base / "ansible", forks=1, archive=dist.collection)
        self.inventory = base / "inventory.yml"
        local = {"ansible_connection": "local", "ansible_python_interpreter": python}
        self.inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": local}}}))
        self.playbook = base / "install.yml"
        role = {"hosts": "all", "gather_facts": False, "roles": ["dockyard.host.install"]}
        self.playbook.write_text(yaml.safe_dump([role]))

    @property
    def prefix(self) -> Path:
        return self.base / "opt/dockyard"

    @property
    def units(self) -> Path:
        return self.base / "systemd"

    def defaults(self) -> dict[str, Any]:
        """On this machine: every path under the temporary directory, and no services."""
        return {
            "dockyard_prefix": str(self.prefix),
            "dockyard_spec_path": str(self.base / "etc/dockyard/spec.yaml"),
            "dockyard_systemd_dir": str(self.units),
            "dockyard_metrics_file": str(self.base / "metrics/dockyard.prom"),
            "dockyard_manage_services": False,
            "dockyard_python": clean_python(),
        }

    def run(self, **variables: Any) -> Run:
        return self.ansible.playbook(
            self.inventory,
            self.playbook,
            extra_vars={**self.defaults(), **variables},
            env={"PEX_ROOT": str(self.base / "pex")},
        )


def installed(installer: Installer, **variables: Any) -> Run:
    first = installer.run(**variables)
    assert first.returncode == 0, first.output
    again = installer.run(**variables)
    assert again.returncode == 0, again.output
    assert again.changed_tasks("localhost") == [], "installing again changes nothing"
    assert again.recap()["localhost"]["changed"] == 0
    return first


def test_the_role_installs_the_single_file_units_and_spec(dist: Dist, tmp_path: Path) -> None:
    installer = Installer(dist, tmp_path)
    spec = {"version": 1, "network": {"bridge": {"mtu": 1450}}}
    installed(installer, dockyard_zipapp=str(dist.zipapp), dockyard_spec=spec)

    program = installer.prefix / "bin/reconcile"
    assert program.read_bytes() == dist.zipapp.read_bytes()
    assert yaml.safe_load((tmp_path / "etc/dockyard/spec.yaml").read_text()) == spec
    for unit in ("dockyard.service", "dockyard-reconcile.service", "dockyard-reconcile.timer"):
        shipped = REPO / "examples/systemd" / unit
        assert (installer.units / unit).read_text() == shipped.read_text()
    dropin = (installer.units / "dockyard.service.d/ansible.conf").read_text()
    assert f'ExecStart="{program}" watch "{tmp_path}/etc/dockyard/spec.yaml"' in dropin
    assert f'Environment="PEX_ROOT={installer.prefix}/pex"' in dropin
    # systemd reads the units with their drop-ins and finds the program they run.
    for unit in ("dockyard.service", "dockyard-reconcile.service", "dockyard-reconcile.timer"):
        verify = subprocess.run(
            ["systemd-analyze", "verify", unit],
            capture_output=True,
            text=True,
            env={**os.environ, "SYSTEMD_UNIT_PATH": f"{installer.units}:"},
            check=False,
        )
        assert verify.returncode == 0, verify.stderr


def test_the_role_refuses_an_invalid_spec(dist: Dist, tmp_path: Path) -> None:
    installer = Installer(dist, tmp_path)
    bad = {"version": 1, "network": {"bridge": {"mtu": 10}}}
    run = installer.run(dockyard_zipapp=str(dist.zipapp), dockyard_spec=bad)
    assert run.returncode != 0
    assert run.results["localhost"]["failed"] is True
    assert "network.bridge.mtu: must be auto or a number" in run.results["localhost"]["stderr"]
    assert not (tmp_path / "etc/dockyard/spec.yaml").exists()


def test_the_role_installs_the_wheel_in_a_virtual_environment(dist: Dist, tmp_path: Path) -> None:
    installer = Installer(dist, tmp_path)
    installed(installer, dockyard_wheel=str(dist.wheel))
    version = subprocess.run(
        [str(installer.prefix / "bin/reconcile"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout == "dockyard 0.1.0\n"
    assert (installer.prefix / "pyvenv.cfg").exists()


def test_the_module_uses_the_installed_program_through_its_json(dist: Dist, tmp_path: Path) -> None:
    """A host whose Python cannot import dockyard: the module runs the program the role put
    in place, reads its -o json documents, and relays a bad spec's located problems."""
    program = tmp_path / "reconcile"
    shutil.copy(dist.zipapp, program)
    pex = {"PEX_ROOT": str(tmp_path / "pex")}
    with fleet(2, python=clean_python(), environment=pex, prefix="dky-json") as hosts:
        use = {"dockyard_executable": str(program)}
        check = hosts.playbook("--check", extra_vars=use)
        first = hosts.playbook(extra_vars=use)
        second = hosts.playbook(extra_vars=use)
        bad = {**use, "dockyard_spec": {"version": 1, "network": {"bridge": {"mtu": 10}}}}
        refused = hosts.playbook(extra_vars=bad)
    assert check.returncode == first.returncode == second.returncode == 0, first.output
    assert check.changed() == first.changed() == hosts.names
    assert all(r["plan"]["command"] == "plan" for r in check.results.values())
    assert all(r["plan"]["converged"] for r in first.results.values())
    assert second.changed() == set()
    assert refused.failed() == hosts.names
    for result in refused.results.values():
        assert result["msg"] == "the spec is not valid"
        [problem] = result["spec_errors"]
        assert "network.bridge.mtu: must be auto or a number from 68 to 65535, got 10" in problem


WATCH = "dockyard.service"
TIMER = "dockyard-reconcile.timer"
ON = {"UnitFileState": "enabled", "ActiveState": "active"}
OFF = {"UnitFileState": "disabled", "ActiveState": "inactive"}
PROGRAM = "/opt/dockyard/bin/reconcile"
SPEC = "/etc/dockyard/spec.yaml"
WANTS = {WATCH: "multi-user.target.wants", TIMER: "timers.target.wants"}


class BoxInstaller(Installer):
    """The role with its own defaults (/opt/dockyard, /etc/systemd/system, services managed),
    its modules run inside a systemd box by the wrapper `systemd_box` writes."""

    def __init__(self, dist: Dist, base: Path, box: SystemdBox) -> None:
        wrapper = box.python_wrapper(base / "python", clean_python())
        super().__init__(dist, base, python=str(wrapper))
        self.zipapp = dist.zipapp

    def defaults(self) -> dict[str, Any]:
        return {"dockyard_zipapp": str(self.zipapp)}


def unit(box: SystemdBox, name: str) -> dict[str, str]:
    """What the box's systemd says of a unit (`systemctl show`)."""
    names = "UnitFileState,ActiveState,NeedDaemonReload,MainPID,ExecStart,DropInPaths"
    out = box.systemctl("show", name, f"--property={names}")
    return dict(line.split("=", 1) for line in out.splitlines())


def converged(installer: BoxInstaller, box: SystemdBox, **variables: Any) -> Run:
    """Run the role twice: the first must succeed, the second must change no task at all."""
    first = installer.run(**variables)
    journal = box.run(["journalctl", "--no-pager", "-n", "40"]).stdout
    assert first.returncode == 0, first.output + journal
    again = installer.run(**variables)
    assert again.returncode == 0, again.output
    assert again.changed_tasks("localhost") == [], again.output
    assert again.recap()["localhost"]["changed"] == 0
    return first


def assert_state(box: SystemdBox, on: str | None) -> None:
    """`on` enabled (its [Install] symlink in place) and running; the other unit disabled
    (no symlink) and stopped; nothing waiting for a daemon-reload."""
    for name in (WATCH, TIMER):
        seen = unit(box, name)
        want = ON if name == on else OFF
        assert {k: seen[k] for k in want} == want, (name, seen)
        assert seen["NeedDaemonReload"] == "no", name
        link = box.root / "etc/systemd/system" / WANTS[name] / name
        assert link.is_symlink() == (name == on), link
        if name == on:
            assert os.readlink(link) == f"/etc/systemd/system/{name}"


def bridge_mtu(box: SystemdBox) -> int:
    """docker0's MTU in the box's own network."""
    shown = box.run(["ip", "-j", "link", "show", "docker0"])
    assert shown.returncode == 0, shown.stderr
    [link] = json.loads(shown.stdout)
    return int(link["mtu"])


def journal(box: SystemdBox) -> str:
    """What the watch logged in the box's journal."""
    return box.run(["journalctl", "--no-pager", "-o", "cat", "-u", WATCH]).stdout


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> bool:
    """`condition` became true within `timeout` seconds (a reload is asynchronous: `systemctl
    reload` returns once ExecReload sent the signal, before the watch's pass)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_the_role_enables_the_watch_or_the_timer_under_a_real_systemd(
    dist: Dist, tmp_path: Path
) -> None:
    """`dockyard_mode` decides which unit runs, on a real systemd (this machine's
    /lib/systemd/systemd, version 252) that runs as PID 1 of namespaces this test creates
    (devtools/systemd_box.py: an overlay root whose writes stay in a tmpfs, a network of its
    own, read-only /proc/sys and /sys, a reduced capability set, its own cgroup): this
    machine's init is not systemd, and its own units are never touched.

    Real: ansible-playbook and the role from the built collection archive with its default
    paths, its modules run by the system Python inside the box (`nsenter`),
    ansible.builtin.systemd_service, systemctl, the manager's enable symlinks, daemon-reload,
    start, restart and stop, the units dockyard ships with the role's drop-ins, and the single
    file running `reconcile watch` as a Type=notify service that reports ready after converging
    the box's network. Stood in for: the host around it. The box boots sysinit.target only, not
    the machine's default target, so none of the services this machine's /etc enables (Docker
    among them) runs in it.

    The timer, then the watch, then neither (`none`), on the same box: each time the chosen
    unit ends enabled and active, the other disabled and inactive; the timer and the watch are
    each chosen twice in a row, the second run changing no task. A running watch's changed
    drop-in restarts it with the new command line, which systemd, having the old one loaded
    for the running unit, only takes after a daemon-reload. A changed spec alone reloads it
    instead (the role's handler, `systemctl reload`, the unit's ExecReload: SIGHUP): the same
    process converges the box's docker0 to the new MTU; the same spec again reloads nothing.
    """
    with systemd_box(tmp_path, prefix="dky-role") as box:
        installer = BoxInstaller(dist, tmp_path, box)

        first = converged(installer, box, dockyard_mode="timer")
        assert "The timer converges the host every 5 minutes" in first.changed_tasks("localhost")
        assert_state(box, TIMER)

        first = converged(installer, box, dockyard_mode="watch")
        assert {
            "The watch keeps the host converged",
            "The timer is off when it is not the chosen mode",
        } <= set(first.changed_tasks("localhost"))
        assert_state(box, WATCH)
        watch = unit(box, WATCH)
        assert f"argv[]={PROGRAM} watch {SPEC} --interval 30 " in watch["ExecStart"]
        assert "/etc/systemd/system/dockyard.service.d/ansible.conf" in watch["DropInPaths"]
        # Ready only after a converged pass, in the box's own network: the bridge it made.
        metrics = box.root / "var/lib/node_exporter/textfile_collector/dockyard.prom"
        assert "dockyard_last_converged_timestamp_seconds" in metrics.read_text()
        assert box.run(["ip", "link", "show", "docker0"]).returncode == 0

        changed = installer.run(dockyard_mode="watch", dockyard_watch_interval=45)
        assert changed.returncode == 0, changed.output
        assert "Restart the dockyard watch" in changed.changed_tasks("localhost")
        restarted = unit(box, WATCH)
        assert f"argv[]={PROGRAM} watch {SPEC} --interval 45 " in restarted["ExecStart"]
        assert restarted["MainPID"] not in ("0", watch["MainPID"])
        assert_state(box, WATCH)

        # A changed spec, and nothing else: the handler reloads the running watch (SIGHUP,
        # through the unit's ExecReload), which converges the box to it without a restart.
        assert bridge_mtu(box) == 1500
        spec = {"version": 1, "network": {"bridge": {"mtu": 1450}}}
        reload = {"dockyard_mode": "watch", "dockyard_watch_interval": 45, "dockyard_spec": spec}
        changed = installer.run(**reload)
        assert changed.returncode == 0, changed.output
        assert changed.changed_tasks("localhost") == [
            "The spec, checked by dockyard on the host before it replaces the old one",
            "Reload the dockyard watch",
        ], changed.output
        assert wait_for(lambda: bridge_mtu(box) == 1450), journal(box)
        reloaded = unit(box, WATCH)
        assert reloaded["MainPID"] == restarted["MainPID"], journal(box)
        assert_state(box, WATCH)
        assert journal(box).count(f"SIGHUP: {SPEC} reloaded") == 1, journal(box)
        # The same spec again: no task changes, so no handler runs and no signal is sent.
        again = installer.run(**reload)
        assert again.returncode == 0, again.output
        assert again.changed_tasks("localhost") == [], again.output
        assert "RUNNING HANDLER" not in again.output
        assert unit(box, WATCH)["MainPID"] == restarted["MainPID"]
        assert journal(box).count(f"SIGHUP: {SPEC} reloaded") == 1, journal(box)

        first = installer.run(dockyard_mode="none")
        assert first.returncode == 0, first.output
        assert "The watch is off when it is not the chosen mode" in first.changed_tasks("localhost")
        assert_state(box, None)
