"""devtools/dockerd.py: a real, private Docker daemon (Debian's docker.io) in a sandbox's network
namespace, proven with real traffic, and gone without a trace when stopped."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from devtools.dockerd import BUSYBOX, Dockerd, DockerdError, in_netns_http_get, private_dockerd
from devtools.sandbox import Sandbox

pytestmark = pytest.mark.root


def ok(box: Sandbox, *argv: str) -> str:
    result = box.run(list(argv))
    assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
    return result.stdout


def docker(d: Dockerd, *args: str) -> str:
    result = d.docker(*args)
    assert result.returncode == 0, f"docker {args}: {result.stderr}\n{d.log_tail(15)}"
    return result.stdout


def ping(box: Sandbox, address: str) -> None:
    ok(box, BUSYBOX, "ping", "-c", "1", "-W", "3", address)


def test_defaults_run_a_container_in_the_sandbox_only(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    with private_dockerd(box) as d:
        # The daemon is in the sandbox's network namespace, and its paths are the sandbox's.
        assert os.stat(f"/proc/{d.pid}/ns/net").st_ino == os.stat(f"/run/netns/{box.ns}").st_ino
        assert d.paths.data_root == box.path("var/lib/docker")
        assert d.paths.pidfile.read_text().strip() == str(d.pid)
        info = json.loads(docker(d, "info", "--format", "{{json .}}"))
        assert info["DockerRootDir"] == str(box.path("var/lib/docker"))
        # dockerd wrote its key to the private /etc/docker bound over the machine's.
        assert (d.paths.config_dir / "key.json").is_file()
        assert "docker0" in ok(box, "ip", "-o", "link", "show")

        image = d.import_busybox()
        assert image.startswith("sha256:")
        started = time.perf_counter()
        assert docker(d, "run", "--rm", "busybox", "echo", "hi") == "hi\n"
        d.timings["run"] = time.perf_counter() - started

        applets = docker(d, "run", "--rm", "busybox", "which", "sh", "nc", "httpd", "ping", "wget")
        assert len(applets.split()) == 5
        # Containers take their DNS from the sandbox's resolv.conf, never the machine's.
        resolv = docker(d, "run", "--rm", "busybox", "cat", "/etc/resolv.conf")
        assert "nameserver 192.0.2.53" in resolv

        # Real traffic both ways between the namespace and a container on docker0.
        docker(d, "run", "-d", "--name", "sleeper", "busybox", "sleep", "300")
        address = d.container_ip("sleeper")
        assert address.startswith("172.17.")
        ping(box, address)
        docker(d, "exec", "sleeper", "ping", "-c", "1", "-W", "3", "172.17.0.1")
    with capsys.disabled():
        times = ", ".join(f"{k} {v:.2f} s" for k, v in d.timings.items())
        print(f"\n[dockerd harness] {times}")


@pytest.mark.parametrize("proxy", ["--userland-proxy=true", "--userland-proxy=false"])
def test_a_published_port_answers_on_the_namespace_address(box: Sandbox, proxy: str) -> None:
    # An address of the namespace's own (not loopback): the DNAT rule in nat OUTPUT serves it.
    ok(box, "ip", "addr", "add", "198.51.100.1/32", "dev", "lo")
    with private_dockerd(box, proxy) as d:
        d.import_busybox()
        docker(
            d, "run", "-d", "--name", "web", "-p", "8080:80", "busybox", "httpd", "-f", "-h", "/www"
        )
        assert in_netns_http_get(box, "198.51.100.1", 8080) == "dockyard busybox\n"
        nat = ok(box, "iptables", "-t", "nat", "-S", "DOCKER")
        assert "--dport 8080 -j DNAT --to-destination" in nat
        proxies = subprocess.run(["pgrep", "-f", f"docker-proxy.*{d.container_ip('web')}"])
        assert (proxies.returncode == 0) == proxy.endswith("true")


def test_stop_leaves_no_process_no_mount_no_cgroup(box: Sandbox) -> None:
    base = str(box.base)
    with private_dockerd(box) as d:
        d.import_busybox()
        docker(
            d, "run", "-d", "--name", "web", "-p", "8080:80", "busybox", "httpd", "-f", "-h", "/www"
        )
        container_pid = int(docker(d, "inspect", "--format", "{{.State.Pid}}", "web"))
        dockerd_pid = d.pid
        mntns = os.readlink(f"/proc/{dockerd_pid}/ns/mnt")
        assert mntns != os.readlink("/proc/self/ns/mnt")
        # While it runs: its overlay and netns mounts exist, in its own mount namespace only.
        inside = Path(f"/proc/{dockerd_pid}/mounts").read_text()
        assert f"{base}/var/lib/docker/overlay2" in inside
        assert base not in Path("/proc/self/mounts").read_text()
        shims = subprocess.run(["pgrep", "-f", f"containerd-shim.*{base}"], capture_output=True)
        assert shims.stdout.split(), "no containerd-shim found for the container"
        cgroups = list(Path("/sys/fs/cgroup").glob(f"*/{d.cgroup_parent}"))
        assert cgroups
        d.stop()

        assert not d.running
        for pid in (dockerd_pid, container_pid, *map(int, shims.stdout.split())):
            assert not running(pid), f"pid {pid} still runs"
        assert subprocess.run(["pgrep", "-af", base], capture_output=True).stdout == b""
        assert subprocess.run(["ip", "netns", "pids", box.ns], capture_output=True).stdout == b""
        in_ns = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _mntns(p) == mntns]
        assert in_ns == []
        assert base not in Path("/proc/self/mounts").read_text()
        assert not any(c.exists() for c in cgroups)
        assert not d.paths.socket.exists()


def running(pid: int) -> bool:
    """Whether `pid` is in the process table as more than a zombie (an exited shim is pid 1's
    to reap, which the harness waits a moment for, but does not control)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def _mntns(proc: Path) -> str | None:
    try:
        return os.readlink(proc / "ns/mnt")
    except OSError:
        return None


def test_an_existing_bridge_without_iptables(box: Sandbox) -> None:
    ok(box, "ip", "link", "add", "docker0", "type", "bridge")
    ok(box, "ip", "addr", "add", "10.66.0.1/24", "dev", "docker0")
    ok(box, "ip", "link", "set", "docker0", "up")
    with private_dockerd(box, "--bridge", "docker0", "--iptables=false") as d:
        d.import_busybox()
        docker(d, "run", "-d", "--name", "sleeper", "busybox", "sleep", "300")
        address = d.container_ip("sleeper")
        assert address.startswith("10.66.0.")
        ping(box, address)
        docker(d, "exec", "sleeper", "ping", "-c", "1", "-W", "3", "10.66.0.1")
        for table in ("nat", "filter"):
            assert "DOCKER" not in ok(box, "iptables", "-t", table, "-S")
        # A restart with other flags: they reach new containers.
        d.restart("--bridge", "docker0", "--iptables=false", "--mtu", "1400", "--dns", "192.0.2.99")
        assert "--mtu" in d.argv
        eth0 = docker(d, "run", "--rm", "busybox", "cat", "/sys/class/net/eth0/mtu")
        assert eth0.strip() == "1400"
        resolv = docker(d, "run", "--rm", "busybox", "cat", "/etc/resolv.conf")
        assert "nameserver 192.0.2.99" in resolv
    # dockerd leaves a bridge it did not create, with its address.
    assert "10.66.0.1/24" in ok(box, "ip", "-o", "addr", "show", "dev", "docker0")


def test_daemon_json_paths_replace_the_flags(box: Sandbox) -> None:
    """What `reconcile export daemon-json` writes (data-root, pidfile, mtu, ...) is fed to dockerd
    as its config file; the harness then leaves those flags out (dockerd refuses both)."""
    config = {
        "data-root": str(box.path("srv/docker")),
        "pidfile": str(box.path("run/dockerd.pid")),
        "mtu": 1400,
    }
    box.path("etc/docker").mkdir(parents=True)
    box.path("etc/docker/daemon.json").write_text(json.dumps(config))
    with private_dockerd(box) as d:
        assert "--data-root" not in d.argv and "--pidfile" not in d.argv
        assert d.paths.data_root == box.path("srv/docker")
        assert box.path("run/dockerd.pid").read_text().strip() == str(d.pid)
        info = json.loads(docker(d, "info", "--format", "{{json .}}"))
        assert info["DockerRootDir"] == str(box.path("srv/docker"))
        d.import_busybox()
        eth0 = docker(d, "run", "--rm", "busybox", "cat", "/sys/class/net/eth0/mtu")
        assert eth0.strip() == "1400"


def test_a_daemon_that_fails_says_why_and_leaves_nothing(box: Sandbox) -> None:
    failing = private_dockerd(box, "--mtu", "not-a-number")
    with pytest.raises(DockerdError, match=r"(?s)exited \(1\).*not-a-number"), failing:
        pass
    assert subprocess.run(["pgrep", "-af", str(box.base)], capture_output=True).stdout == b""
    # Never the machine's daemon: its socket, or a state outside the sandbox, is refused.
    machine = private_dockerd(box, "-H", "unix:///var/run/docker.sock")
    with pytest.raises(DockerdError, match="the harness sets it"), machine:
        pass
    box.path("etc/docker/daemon.json").write_text(json.dumps({"data-root": "/var/lib/docker"}))
    with pytest.raises(DockerdError, match="outside"), private_dockerd(box):
        pass
