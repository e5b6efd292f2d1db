"""`reconcile watch` and `reconcile down` against the real kernel. Every wait is bounded and
polls for an outcome; no assertion is about how long something took."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.sandbox import Sandbox
from tests.integration.watching import PATIENCE, Watcher, corrective

pytestmark = pytest.mark.root


def root_of(box: Sandbox) -> Path:
    return Path(box.spec["root"])


DRIFT: dict[str, tuple[Callable[[Sandbox], None], Callable[[Sandbox], str]]] = {
    "bridge deleted": (
        lambda b: b.run(["ip", "link", "del", "docker0"], check=True),
        lambda b: "bridge docker0",
    ),
    "address removed": (
        lambda b: b.run(["ip", "addr", "flush", "dev", "docker0"], check=True),
        lambda b: "bridge docker0",
    ),
    "owned rule deleted": (
        lambda b: b.run(["iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "1"], check=True),
        lambda b: next(
            line.replace("-A POSTROUTING ", "rule nat POSTROUTING ")
            for line in b.run(["iptables-save", "-t", "nat"]).stdout.splitlines()
            if line.startswith("-A POSTROUTING")
        ),
    ),
    "ip_forward set to 0": (
        lambda b: b.set_sysctl("net.ipv4.ip_forward", "0"),
        lambda b: "sysctl net.ipv4.ip_forward",
    ),
    "directory mode changed": (
        lambda b: (root_of(b) / "graph").chmod(0o755),
        lambda b: f"directory {root_of(b)}/graph",
    ),
}


@pytest.mark.parametrize("drift", list(DRIFT), ids=list(DRIFT))
def test_a_running_watch_repairs_drift_as_corrective(
    box: Sandbox, watcher: Callable[..., Watcher], drift: str
) -> None:
    w = watcher()
    w.ready()
    make, resource = DRIFT[drift]
    name = resource(box)
    make(box)
    w.wait_for(corrective(name), f"corrective change of {name}")
    w.wait_for(lambda e: e["event"] == "pass" and e["kind"] == "corrective", "corrective pass")
    assert box.reconcile("plan", "SPEC", "--detailed-exitcode").returncode == 0  # converged
    assert w.stop() == 0


def test_sigterm_removes_the_pid_file_and_releases_the_lock(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    w = watcher()
    w.ready()
    pidfile = Path(box.spec["state_dir"]) / "dockyard.pid"
    assert pidfile.read_text() == f"{w.proc.pid}\n"
    assert not Path(box.spec["pidfile"]).exists()  # Docker's pid file is never the watch's
    assert w.stop() == 0
    w.wait_for(lambda e: e["event"] == "stopping", "stopping event")
    assert not pidfile.exists()
    result = box.reconcile("SPEC", "--lock-timeout", "0")
    assert result.returncode == 0, result.stderr


def test_a_second_watch_refuses_and_names_the_first(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    first = watcher()
    first.ready()
    holder = (Path(box.spec["state_dir"]) / "dockyard.pid").read_text().strip()
    second = box.reconcile("watch", "SPEC")
    assert second.returncode == 1
    assert f"held by pid {holder}" in second.stderr


def test_sighup_applies_a_new_spec(box: Sandbox, watcher: Callable[..., Watcher]) -> None:
    w = watcher()
    w.ready()
    box.write_spec({"version": 1, "network": {"icc": False}})
    w.proc.send_signal(signal.SIGHUP)
    w.wait_for(lambda e: e["event"] == "reload", "reload event")
    change = w.wait_for(
        lambda e: e["event"] == "change" and e["resource"].endswith("-j DROP"), "DROP rule"
    )
    assert change["kind"] == "intentional"
    # Changes are logged as they start; the pass event follows once they are applied.
    after = w.seen.index(change)
    w.wait_for(lambda e: e["event"] == "pass", "the pass that applied it", since=after)
    assert "-j DROP" in box.run(["iptables-save", "-t", "filter"]).stdout


def test_sighup_with_a_broken_spec_keeps_the_old_one(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    w = watcher()
    w.ready()
    box.spec_path.write_text(box.spec_path.read_text() + "bogus_key: 1\n")
    w.proc.send_signal(signal.SIGHUP)
    error = w.wait_for(lambda e: e["event"] == "reload-error", "reload error")
    assert error["error"].startswith(f"{box.spec_path}:")
    assert "bogus_key: unknown field" in error["error"]
    box.run(["ip", "link", "del", "docker0"], check=True)
    w.wait_for(corrective("bridge docker0"), "repair under the old spec")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_answer_on_loopback(box: Sandbox, watcher: Callable[..., Watcher]) -> None:
    port = free_port()
    metrics_file = box.base / "dockyard.prom"
    w = watcher("--metrics-addr", f"127.0.0.1:{port}", "--metrics-file", str(metrics_file))
    w.ready()
    box.run(["ip", "link", "del", "docker0"], check=True)
    w.wait_for(lambda e: e["event"] == "pass" and e["kind"] == "corrective", "corrective pass")
    url = f"http://127.0.0.1:{port}/metrics"
    code = (
        f"import urllib.request\nprint(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    )
    text = box.run([sys.executable, "-c", code], check=True).stdout
    assert 'dockyard_changes_total{kind="corrective",reconciler="bridge"} 1.0' in text
    assert 'dockyard_changes_total{kind="intentional",reconciler="bridge"} 1.0' in text
    assert 'dockyard_passes_total{result="ok"}' in text
    for name in (
        "dockyard_drift",
        "dockyard_errors_total",
        "dockyard_pass_duration_seconds_count",
        "dockyard_last_converged_timestamp_seconds",
        'dockyard_reads_total{read="full",reconciler="iptables"}',
    ):
        assert name in text
    assert "dockyard_passes_total" in metrics_file.read_text()


def test_systemd_hears_ready_and_stopping(box: Sandbox, tmp_path: Path) -> None:
    sock_path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(PATIENCE)
        argv = box.dockyard("watch", "SPEC", "--interval", "5")
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **box.env, "NOTIFY_SOCKET": str(sock_path)},
        )
        try:
            assert sock.recv(64) == b"READY=1"
            proc.send_signal(signal.SIGTERM)
            assert sock.recv(64) == b"STOPPING=1"
            assert proc.wait(timeout=PATIENCE) == 0
        finally:
            proc.kill()


def test_down_removes_what_dockyard_owns_and_nothing_else(box: Sandbox) -> None:
    assert box.reconcile("SPEC").returncode == 0
    box.run(["iptables", "-w", "-A", "FORWARD", "-s", "10.0.0.1/32", "-j", "ACCEPT"], check=True)
    box.run(["ip", "link", "add", "mine0", "type", "bridge"], check=True)
    root = root_of(box)
    (root / "containers" / "keep").mkdir()
    data_before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))

    dry = box.reconcile("down", "SPEC", "--dry-run")
    assert dry.returncode == 0 and "- bridge docker0  (dockyard created it)" in dry.stdout

    result = box.reconcile("down", "SPEC")
    assert result.returncode == 0, result.stderr
    assert box.run(["ip", "link", "show", "docker0"]).returncode != 0
    assert box.run(["ip", "link", "show", "mine0"]).returncode == 0
    saved = box.run(["iptables-save"]).stdout
    assert "dockyard" not in saved and ":DOCKYARD" not in saved
    assert ":DOCKER " in saved  # the daemon's chains stay, whoever made them
    assert "-A FORWARD -s 10.0.0.1/32 -j ACCEPT" in saved
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == data_before
    again = box.reconcile("down", "SPEC", "--detailed-exitcode")
    assert (again.returncode, again.stdout) == (0, "Nothing of dockyard's is left on this host.\n")


def test_down_keeps_a_bridge_dockyard_did_not_create(box: Sandbox) -> None:
    box.run(["ip", "link", "add", "docker0", "type", "bridge"], check=True)
    assert box.reconcile("SPEC").returncode == 0
    result = box.reconcile("down", "SPEC")
    assert result.returncode == 0
    assert "docker0 stays: dockyard did not create it" in result.stdout
    assert box.run(["ip", "link", "show", "docker0"]).returncode == 0


def test_a_failing_pass_backs_off_and_the_loop_goes_on(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    w = watcher()
    w.ready()
    resolv = Path(box.spec["dns"]["host_resolv_conf"])
    saved = resolv.read_text()
    resolv.unlink()
    first = w.wait_for(lambda e: e["event"] == "error", "failed pass")
    assert "cannot read" in first["error"] and first["backoff"] == 1
    # A failing concern stops only those after it: a deleted rule of the firewall, which
    # does not come after dns, is still repaired while dns keeps failing.
    drift, resource = DRIFT["owned rule deleted"]
    name = resource(box)
    drift(box)
    w.wait_for(corrective(name), "firewall repaired while dns fails")
    second = w.wait_for(lambda e: e["event"] == "error" and e["backoff"] >= 2, "longer backoff")
    assert "cannot read" in second["error"]
    resolv.write_text(saved)
    box.run(["ip", "link", "del", "docker0"], check=True)
    w.wait_for(corrective("bridge docker0"), "recovery after the errors")


def test_down_never_strands_containers_unless_forced(box: Sandbox) -> None:
    assert box.reconcile("SPEC").returncode == 0
    box.run(
        ["ip", "link", "add", "veth-c1", "type", "veth", "peer", "name", "veth-c1p"], check=True
    )
    box.run(["ip", "link", "set", "veth-c1", "master", "docker0"], check=True)
    refused = box.reconcile("down", "SPEC")
    assert refused.returncode == 1
    assert (
        "docker0 stays: 1 port(s) attached (veth-c1), containers use it; stop them first, or "
        "reconcile down --force" in refused.stderr
    )
    assert box.run(["ip", "link", "show", "docker0"]).returncode == 0
    assert "dockyard:" in box.run(["iptables-save"]).stdout  # the firewall stays with it
    box.run(["ip", "link", "del", "veth-c1"], check=True)

    pidfile = Path(box.spec["pidfile"])
    with subprocess.Popen(["sleep", "60"]) as daemon:
        try:
            pidfile.write_text(f"{daemon.pid}\n")
            refused = box.reconcile("down", "SPEC")
            assert refused.returncode == 1
            assert f"a live daemon (pid {daemon.pid}, sleep) holds {pidfile}" in refused.stderr
            forced = box.reconcile("down", "SPEC", "--force")
            assert forced.returncode == 0, forced.stderr
            assert box.run(["ip", "link", "show", "docker0"]).returncode != 0
            assert pidfile.read_text() == f"{daemon.pid}\n"  # a live holder's file stays
        finally:
            daemon.kill()
