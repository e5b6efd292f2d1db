"""A simulated fleet for the Ansible collection: N sandboxes as N hosts, and ansible-playbook
over an inventory of them.

Every host is a network namespace with its own temporary root (`devtools.sandbox`), its own
spec (the paths relocated under that root, and one difference per host: its bridge's MTU and a
published port) and its own xtables lock. Ansible reaches each one with the local connection
and an `ansible_python_interpreter` wrapper that enters the host's namespace, so every module
run is confined there. The collection is built with `ansible-galaxy collection build` and
installed in the fleet's working directory, as a user would install it.

The module's interpreter is this Python (the project's virtual environment), which imports
dockyard: the module uses dockyard's Python API.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devtools.sandbox import Sandbox, sandbox

REPO = Path(__file__).resolve().parent.parent
COLLECTION = REPO / "integrations/ansible/ansible_collections/dockyard/host"
PLAYBOOK = REPO / "integrations/ansible/playbooks/converge.yml"
CALLBACKS = Path(__file__).resolve().parent / "ansible_plugins"
GROUP = "container_hosts"
CONTAINER_IP = "172.17.0.2"  # in the subnet the bridge's `auto` address takes in a fresh netns


def tool(name: str) -> str:
    """An Ansible program of this environment (the one that runs this code)."""
    return str(Path(sys.executable).parent / name)


def host_spec(index: int) -> dict[str, Any]:
    """Host `index`'s spec before relocation: Docker's defaults, its own MTU and port."""
    return {
        "version": 1,
        "network": {
            "bridge": {"mtu": mtu_of(index)},
            "published_ports": [
                {
                    "proto": "tcp",
                    "host_ip": "0.0.0.0",
                    "host_port": port_of(index),
                    "container_ip": CONTAINER_IP,
                    "container_port": 80,
                }
            ],
        },
    }


def mtu_of(index: int) -> int:
    return 1300 + index % 200


def port_of(index: int) -> int:
    return 8000 + index


@dataclass
class Member:
    """One host of the fleet."""

    name: str
    index: int
    box: Sandbox

    @property
    def spec(self) -> dict[str, Any]:
        return self.box.spec


@dataclass(frozen=True)
class Drift:
    """A change made by hand on one host, and the line its plan then shows for it."""

    what: str
    make: Callable[[Member], object]
    shows: str


# By host index: the drift the test and the demo make on a few hosts of the fleet.
DRIFTS = {
    2: Drift(
        "net.ipv4.ip_forward back to 0",
        lambda m: m.box.set_sysctl("net.ipv4.ip_forward", "0"),
        "~ sysctl net.ipv4.ip_forward",
    ),
    5: Drift(
        "docker0's MTU set to 1500",
        lambda m: m.box.run(["ip", "link", "set", "docker0", "mtu", "1500"], check=True),
        "~ bridge docker0",
    ),
    11: Drift(
        "the published port's DNAT rule flushed from nat DOCKYARD",
        lambda m: m.box.run(["iptables", "-w", "-t", "nat", "-F", "DOCKYARD"], check=True),
        "+ rule nat DOCKYARD",
    ),
    17: Drift(
        "<root>/graph opened to 0755",
        lambda m: (Path(m.spec["root"]) / "graph").chmod(0o755),
        "~ directory ",
    ),
}


@dataclass
class Run:
    """One ansible-playbook run: its exit code, its output and each host's module result."""

    returncode: int
    output: str
    seconds: float
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def changed(self) -> set[str]:
        return {h for h, r in self.results.items() if r.get("changed")}

    def failed(self) -> set[str]:
        return {h for h, r in self.results.items() if r.get("failed") or r.get("unreachable")}

    def recap(self) -> dict[str, dict[str, int]]:
        """Each host's PLAY RECAP counts (ok, changed, failed...): every task of the run, where
        `results` keeps only each host's last one."""
        out: dict[str, dict[str, int]] = {}
        for host, counts in _RECAP.findall(self.output):
            out[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
        return out

    def changed_tasks(self, host: str) -> list[str]:
        """The names of the tasks and handlers that reported `changed` on `host`, in order
        (from the default callback's output: `TASK [role : name]` then `changed: [host]`)."""
        names: list[str] = []
        task = ""
        for line in self.output.splitlines():
            if heading := _TASK.match(line):
                task = heading.group(1).split(" : ", 1)[-1]  # without the role's name
            elif line.startswith(f"changed: [{host}]") and (not names or names[-1] != task):
                names.append(task)
        return names


_RECAP = re.compile(r"^(\S+)\s+:\s+(ok=\d+.*)$", re.MULTILINE)
_TASK = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.*)\]")


class Ansible:
    """ansible-playbook with the collection installed in a working directory of its own
    (its configuration, temporary files and the results of every run stay there)."""

    def __init__(self, workdir: Path, forks: int, archive: Path | None = None) -> None:
        self.workdir = workdir
        self._runs = 0
        collections = install_collection(workdir, archive)
        (workdir / "ansible.cfg").write_text(_config(workdir, forks, collections))

    def env(self, results: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {
            **os.environ,
            **(extra or {}),
            "ANSIBLE_CONFIG": str(self.workdir / "ansible.cfg"),
            "DOCKYARD_FLEET_RESULTS": str(results),
            "LC_ALL": "C.UTF-8",  # ansible-core insists on a UTF-8 locale
            "NO_COLOR": "1",
            "ANSIBLE_NOCOLOR": "1",
        }

    def playbook(
        self,
        inventory: Path,
        playbook: Path,
        *options: str,
        extra_vars: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        echo: bool = False,
    ) -> Run:
        """`ansible-playbook` with `options` (`--check`, `--diff`, `--limit`); each host's
        result is read from the file the callback `devtools/ansible_plugins/fleet_results.py`
        writes for it."""
        self._runs += 1
        saved = self.workdir / f"results-{self._runs}"
        argv = [tool("ansible-playbook"), "-i", str(inventory), str(playbook), *options]
        if extra_vars:
            argv += ["--extra-vars", json.dumps(extra_vars)]
        if echo:
            print("$ ansible-playbook " + shlex.join(argv[1:]), flush=True)
        started = time.perf_counter()
        proc = subprocess.run(
            argv,
            cwd=self.workdir,
            env=self.env(saved, env),
            stdout=None if echo else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        results = {p.name: json.loads(p.read_text()) for p in saved.glob("*")}
        return Run(proc.returncode, proc.stdout or "", seconds, results)


class Fleet:
    def __init__(self, members: list[Member], ansible: Ansible, inventory: Path) -> None:
        self.members = members
        self.ansible = ansible
        self.inventory = inventory

    @property
    def names(self) -> set[str]:
        return {m.name for m in self.members}

    def playbook(
        self, *options: str, extra_vars: dict[str, Any] | None = None, echo: bool = False
    ) -> Run:
        """`ansible-playbook converge.yml` over the whole fleet."""
        return self.ansible.playbook(
            self.inventory, PLAYBOOK, *options, extra_vars=extra_vars, echo=echo
        )


def _wrapper(box: Sandbox, python: str) -> Path:
    """The host's Python: `python`, inside the host's network namespace."""
    path = box.base / "python"
    path.write_text(
        "#!/bin/sh\n"
        f"# A fleet host: its Ansible modules run in network namespace {box.ns}.\n"
        f'exec ip netns exec {shlex.quote(box.ns)} {shlex.quote(python)} "$@"\n'
    )
    path.chmod(0o755)
    return path


def _inventory(
    members: Sequence[Member], python: str, environment: dict[str, str]
) -> dict[str, Any]:
    hosts = {
        m.name: {
            "ansible_python_interpreter": str(_wrapper(m.box, python)),
            "dockyard_spec": m.spec,
            "dockyard_environment": {**m.box.env, **environment},
        }
        for m in members
    }
    return {GROUP: {"hosts": hosts, "vars": {"ansible_connection": "local"}}}


def _config(workdir: Path, forks: int, collections: Path) -> str:
    return "\n".join(
        [
            "[defaults]",
            f"forks = {forks}",
            f"collections_path = {collections}",
            f"home = {workdir / 'home'}",
            f"local_tmp = {workdir / 'tmp'}",
            f"remote_tmp = {workdir / 'tmp'}",
            f"callback_plugins = {CALLBACKS}",
            "callbacks_enabled = fleet_results",
            "retry_files_enabled = False",
            "[connection]",
            "pipelining = True",
            "",
        ]
    )


def install_collection(workdir: Path, archive: Path | None = None) -> Path:
    """Install the collection's `archive` under `workdir`; without one, first build it from
    this checkout with `ansible-galaxy collection build`."""
    if archive is None:
        galaxy("build", str(COLLECTION), "--output-path", str(workdir))
        archive = next(workdir.glob("dockyard-host-*.tar.gz"))
    collections = workdir / "collections"
    galaxy("install", str(archive), "-p", str(collections))
    return collections


def galaxy(*args: str) -> None:
    subprocess.run(
        [tool("ansible-galaxy"), "collection", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )


@contextlib.contextmanager
def fleet(
    size: int,
    forks: int | None = None,
    prefix: str = "dky-fleet",
    python: str = sys.executable,
    environment: dict[str, str] | None = None,
) -> Iterator[Fleet]:
    """`size` hosts whose modules run with `python` (by default this one, which imports
    dockyard) and `environment`. Each sandbox deletes its namespace by name and its root
    afterwards, also when something fails or is interrupted part way."""
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{prefix}-")))
        members = [
            Member(f"h{i:03d}", i, stack.enter_context(sandbox(host_spec(i), prefix=prefix)))
            for i in range(size)
        ]
        ansible = Ansible(workdir, forks or size)
        inventory = workdir / "inventory.yml"
        inventory.write_text(yaml.safe_dump(_inventory(members, python, environment or {})))
        yield Fleet(members, ansible, inventory)
