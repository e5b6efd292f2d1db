"""Throwaway hosts for the demo, the benchmarks and the integration tests.

A sandbox is a network namespace created here and deleted by name afterwards, plus a
temporary directory that stands in for `/`: the spec's paths are moved under it. Nothing in
here touches the machine's own network.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_counter = itertools.count()


def netns_name(prefix: str = "dky") -> str:
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


@contextlib.contextmanager
def netns(prefix: str = "dky") -> Iterator[str]:
    """A fresh network namespace with loopback up and forwarding off, as on a host that has
    never run Docker (a new namespace otherwise inherits the machine's forwarding setting)."""
    name = netns_name(prefix)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            ["ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0"],
            check=True,
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def relocate(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """The spec with every host path moved under `base`, which gets the skeleton of a root
    filesystem (/etc, /var/lib, /var/run) and a resolv.conf to read."""
    for skeleton in ("etc", "run", "var/lib", "var/run"):
        (base / skeleton).mkdir(parents=True, exist_ok=True)
    out = {**spec}
    for key, default in (
        ("root", "/var/lib/docker"),
        ("pidfile", "/var/run/docker.pid"),
        ("state_dir", "/var/lib/dockyard"),
    ):
        out[key] = str(base / str(out.get(key, default)).lstrip("/"))
    dns = dict(out.get("dns") or {})
    resolv = base / "etc/resolv.conf"
    resolv.parent.mkdir(parents=True, exist_ok=True)
    if not resolv.exists():
        # A nameserver in a documentation range, clear of every bridge candidate.
        resolv.write_text("nameserver 192.0.2.53\nsearch example.test\n")
    dns["host_resolv_conf"] = str(resolv)
    out["dns"] = dns
    return out


@dataclass
class Sandbox:
    ns: str
    base: Path
    spec_path: Path

    @property
    def env(self) -> dict[str, str]:
        """The xtables lock of this sandbox alone, so nothing here waits on the machine's; and
        its own spec cache, as a host of its own would have."""
        return {
            "NO_COLOR": "1",
            "XTABLES_LOCKFILE": str(self.base / "run/xtables.lock"),
            "DOCKYARD_CACHE_DIR": str(self.base / "var/cache/dockyard"),
        }

    @property
    def spec(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.spec_path.read_text())
        return loaded

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.spec_path.write_text(yaml.safe_dump(relocate(spec, self.base), sort_keys=False))

    def path(self, relative: str) -> Path:
        return self.base / relative.lstrip("/")

    def reconcile(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        check: bool = False,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`reconcile ARGS` inside the namespace; SPEC stands for this sandbox's spec file."""
        return self.run(self._reconcile(args), env=env, check=check, timeout=timeout)

    def dockyard(self, *args: str) -> list[str]:
        """The argument list that runs `reconcile ARGS` inside the namespace (SPEC as above),
        for callers that start and watch the process themselves."""
        return ["ip", "netns", "exec", self.ns, *self._reconcile(args)]

    def _reconcile(self, args: Sequence[str]) -> list[str]:
        argv = [str(self.spec_path) if a == "SPEC" else a for a in args]
        return [sys.executable, "-m", "dockyard", *argv]

    def run(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        check: bool = False,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`argv` inside the namespace; with `timeout`, killed after that many seconds."""
        full_env = {**os.environ, **self.env, **(env or {})}
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            capture_output=True,
            text=True,
            env=full_env,
            check=check,
            timeout=timeout,
        )

    def sysctl(self, name: str) -> str:
        return self.run(["sysctl", "-n", name], check=True).stdout.strip()

    def set_sysctl(self, name: str, value: str) -> None:
        self.run(["sysctl", "-q", "-w", f"{name}={value}"], check=True)


@contextlib.contextmanager
def sandbox(spec: dict[str, Any], prefix: str = "dky") -> Iterator[Sandbox]:
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-root-") as tmp, netns(prefix) as ns:
        base = Path(tmp)
        box = Sandbox(ns, base, base / "spec.yaml")
        box.write_spec(spec)
        yield box
