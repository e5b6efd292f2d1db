"""A real, private Docker daemon inside a sandbox's network namespace, for the tests.

Debian's docker.io (dockerd 20.10, its managed containerd 1.6, runc 1.1) runs as

    ip netns exec NS  unshare --mount --propagation private  python dockerd.py inner PLAN
      (mounts below, then exec)  /usr/sbin/dockerd --data-root D --exec-root E --pidfile P
        -H unix://S --config-file C/daemon.json --cgroup-parent /dockyard-NS  FLAGS...

so the Popen's pid is dockerd's own. Why each piece is there:

- `ip netns exec NS`: docker0, the veths, the iptables rules, ip_forward and the published ports
  all live in the sandbox's namespace; the machine's network is never seen. It also mounts a
  fresh /sys for that namespace (dockerd sets bridge options through /sys/class/net), which
  hides the machine's cgroup mounts.
- `unshare --mount --propagation private`: a mount namespace of dockerd's own. What it and this
  launcher mount (cgroups, /run, overlay layers, the containers' netns files) is never seen by
  the machine, and goes when the last process in it (dockerd, containerd, shims, docker-proxy)
  ends. `ip netns exec` alone makes / only a slave.
- the cgroup hierarchies mounted again where the machine has them (the tmpfs, each v1
  controller and named hierarchy, cgroup2; or cgroup2 alone), with the machine's own super
  options, so nothing about the shared hierarchies changes: runc creates the containers' cgroups
  there. They are the machine's hierarchies (no cgroup namespace), so `--cgroup-parent
  /dockyard-NS` keeps the containers in one subtree, which is emptied and removed at the end.
- a tmpfs on /run (= /var/run): containerd puts its shims' sockets in /run/containerd/s
  whatever its state directory, and /run/docker, /run/containerd may be the machine's.
- the private config directory bound on /etc/docker: dockerd writes key.json there (and reads
  certs.d) whatever --config-file says; --config-file names the private daemon.json.
- the sandbox's etc/resolv.conf bound on /etc/resolv.conf: containers take their DNS from it
  (the file dockyard's `dns.host_resolv_conf` reads in a sandbox), never from the machine.
- --data-root, --exec-root, --pidfile, -H: Docker's defaults moved under the sandbox root as the
  spec's paths are (var/lib/docker, var/run/docker, var/run/docker.pid, var/run/docker.sock), or
  what the private daemon.json says (then the flag is left out; dockerd refuses both). No
  --containerd: dockerd starts its own, rooted in the data root, socket in the exec root.
- the sandbox's env (XTABLES_LOCKFILE): dockerd's iptables calls take dockyard's lock.
- the CLI is Debian's /usr/bin/docker (not a newer client elsewhere on PATH), given -H and
  DOCKER_HOST, with a private DOCKER_CONFIG (never root's ~/.docker).
- images only by `docker import` of a tarball built here around /bin/busybox (busybox-static):
  no registry is ever asked.

Stopping: running containers are killed over the API, dockerd gets SIGTERM (SIGKILL after a
bound), then whatever is still in its mount namespace or in its cgroup subtree is killed, the
subtree removed, and the stop fails loudly if anything is left. Every wait is bounded.
`python -m devtools.dockerd bench` times a start, an import and a run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from devtools.sandbox import Sandbox

DOCKERD = "/usr/sbin/dockerd"
DOCKER_CLI = "/usr/bin/docker"
BUSYBOX = "/bin/busybox"
CGROUP_ROOT = "/sys/fs/cgroup"
ETC_DOCKER = "/etc/docker"
RESOLV_CONF = "/etc/resolv.conf"

# Flags the harness owns: passing them would move the daemon's state out of the sandbox (or to
# the machine's daemon). Use the `paths` argument, or the private daemon.json, instead.
OWNED_FLAGS = (
    "-H",
    "--host",
    "-p",
    "--pidfile",
    "-g",
    "--graph",
    "--data-root",
    "--exec-root",
    "--config-file",
    "--containerd",
    "--cgroup-parent",
)

# What the private daemon.json may set instead of a flag: key -> Paths field.
_CONFIG_PATHS = {"data-root": "data_root", "exec-root": "exec_root", "pidfile": "pidfile"}

# cgroup v1 options that are not controllers: a hierarchy with only these (and name=) is mounted
# with "none", or the kernel would bind every controller to it.
_V1_FLAGS = frozenset({"xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods"})


class DockerdError(RuntimeError):
    """dockerd did not start, or did not stop cleanly."""


@dataclass(frozen=True)
class Paths:
    data_root: Path
    exec_root: Path
    pidfile: Path
    socket: Path
    config_dir: Path
    log: Path
    cli_config: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "daemon.json"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @classmethod
    def in_sandbox(cls, base: Path) -> Paths:
        """Docker's default paths, moved under the sandbox root."""
        return cls(
            data_root=base / "var/lib/docker",
            exec_root=base / "var/run/docker",
            pidfile=base / "var/run/docker.pid",
            socket=base / "var/run/docker.sock",
            config_dir=base / "etc/docker",
            log=base / "var/log/dockerd.log",
            cli_config=base / "root/.docker",
        )


@dataclass(frozen=True)
class Mount:
    """One mount the launcher makes inside dockerd's mount namespace."""

    fstype: str
    source: str
    target: str
    options: str = ""
    bind: bool = False

    def argv(self) -> list[str]:
        if self.bind:
            return ["mount", "--bind", self.source, self.target]
        opts = ["-o", self.options] if self.options else []
        return ["mount", "-t", self.fstype, *opts, self.source, self.target]


def cgroup_mounts(mountinfo: str) -> list[Mount]:
    """The mounts that rebuild, in a fresh /sys, the cgroup hierarchies `mountinfo` shows under
    /sys/fs/cgroup, parents first, with the same super options (mounting cgroup2 again with other
    options would change them for the whole machine)."""
    found: list[Mount] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        target = fields[4]
        if target != CGROUP_ROOT and not target.startswith(CGROUP_ROOT + "/"):
            continue
        fstype, source, superopts = fields[sep + 1], fields[sep + 2], fields[sep + 3]
        if fstype not in ("tmpfs", "cgroup", "cgroup2"):
            continue
        opts = [
            o for o in superopts.split(",") if o not in ("rw", "ro") and "release_agent=" not in o
        ]
        if fstype == "cgroup" and all(o in _V1_FLAGS or o.startswith("name=") for o in opts):
            opts.insert(0, "none")
        found.append(Mount(fstype, source, target, ",".join(opts)))
    return found


def busybox_tarball(busybox: str = BUSYBOX) -> bytes:
    """A root filesystem of one static busybox and a link per applet (sh, nc, httpd, ping, wget,
    ip, ...), /etc/passwd and /etc/group, and /www/index.html for `httpd -h /www`."""
    binary = Path(busybox).read_bytes()
    applets = subprocess.run(
        [busybox, "--list-full"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.split()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.size, info.linkname = kind, mode, len(data), link
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "www", "proc", "sys"}
        dirs |= {"dev", "var"} | {str(Path(a).parent) for a in applets}
        for d in sorted(dirs):
            add(d, tarfile.DIRTYPE, 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("bin/busybox", tarfile.REGTYPE, 0o755, binary)
        for applet in applets:
            if applet != "bin/busybox":
                add(applet, tarfile.SYMTYPE, 0o777, link="/bin/busybox")
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        add("etc/passwd", tarfile.REGTYPE, 0o644, passwd)
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnogroup:x:65534:\n")
        add("www/index.html", tarfile.REGTYPE, 0o644, b"dockyard busybox\n")
    return out.getvalue()


def _ping(sock: Path, timeout: float = 1.0) -> bool:
    """GET /_ping on the daemon's socket: True on 200."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = s.recv(4096).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status.startswith(b"HTTP/1.") and b" 200 " in status + b" "


def _within(path: Path, base: Path) -> bool:
    return path.resolve().is_relative_to(base.resolve())


def _mount_ns(pid: int) -> str | None:
    try:
        return str(Path(f"/proc/{pid}/ns/mnt").readlink())
    except OSError:
        return None


def _exe(pid: int) -> str | None:
    try:
        return str(Path(f"/proc/{pid}/exe").readlink())
    except OSError:
        return None


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Polls `check` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Dockerd:
    """A running private dockerd in `box`'s namespace; see the module docstring."""

    def __init__(
        self, box: Sandbox, paths: Paths, flags: Sequence[str], start_timeout: float = 60.0
    ) -> None:
        self.box = box
        self.configured = paths
        self.paths = paths
        self.flags = tuple(flags)
        self.start_timeout = start_timeout
        self.cgroup_parent = f"dockyard-{box.ns}"
        self.timings: dict[str, float] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._mntns: str | None = None
        self._cgroup_dirs: list[Path] = []
        for path in dataclasses.astuple(paths):
            if not _within(Path(path), box.base):
                raise DockerdError(f"{path} is outside the sandbox root {box.base}")

    # -- what tests use ------------------------------------------------------------------

    @property
    def pid(self) -> int:
        if self._proc is None or self._proc.poll() is not None:
            raise DockerdError("dockerd is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def argv(self) -> list[str]:
        """dockerd's own argument list (what runs after the launcher's mounts)."""
        config = self._config()
        own: list[str] = []
        for key, flag, value in (
            ("data-root", "--data-root", self.paths.data_root),
            ("exec-root", "--exec-root", self.paths.exec_root),
            ("pidfile", "--pidfile", self.paths.pidfile),
            ("hosts", "-H", self.paths.host),
        ):
            if key not in config:
                own += [flag, str(value)]
        own += ["--config-file", str(self.paths.config_file)]
        own += ["--cgroup-parent", f"/{self.cgroup_parent}"]
        return [DOCKERD, *own, *self.flags]

    def docker(
        self, *args: str, timeout: float = 60.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this daemon only (never the machine's)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
        }
        env.update(DOCKER_HOST=self.paths.host, DOCKER_CONFIG=str(self.paths.cli_config))
        result = subprocess.run(
            [DOCKER_CLI, "-H", self.paths.host, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise DockerdError(f"docker {' '.join(args)}: {result.stderr.strip()}")
        return result

    def import_busybox(self, tag: str = "busybox:latest") -> str:
        """Imports the busybox image (see `busybox_tarball`) as `tag`; its image id."""
        started = time.perf_counter()
        tarball = self.box.base / "busybox.tar"
        tarball.write_bytes(busybox_tarball())
        result = self.docker("import", "-c", 'CMD ["sh"]', str(tarball), tag, check=True)
        self.timings["import"] = time.perf_counter() - started
        return result.stdout.strip()

    def container_ip(self, container: str, network: str | None = None) -> str:
        """The IPv4 address of `container` on `network` (its only network when None)."""
        out = self.docker(
            "inspect", "--format", "{{json .NetworkSettings.Networks}}", container, check=True
        ).stdout
        networks: dict[str, Any] = json.loads(out)
        if network is None:
            if len(networks) != 1:
                raise DockerdError(f"{container} is on {sorted(networks)}: name one")
            network = next(iter(networks))
        address: str = networks[network]["IPAddress"]
        return address

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.paths.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            raise DockerdError("dockerd is already running")
        self.paths = self._effective_paths()
        for d in (self.paths.data_root, self.paths.exec_root, self.paths.cli_config):
            d.mkdir(parents=True, exist_ok=True)
        for f in (self.paths.pidfile, self.paths.socket, self.paths.log):
            f.parent.mkdir(parents=True, exist_ok=True)
        plan = self.box.base / "dockerd-plan.json"
        plan.write_text(json.dumps(self._plan()))
        self._mntns = None
        self._cgroup_dirs = [
            Path(m.target) / self.cgroup_parent
            for m in cgroup_mounts(Path("/proc/self/mountinfo").read_text())
            if m.fstype != "tmpfs"
        ]
        netns_exec = ["ip", "netns", "exec", self.box.ns]
        launcher = [sys.executable, "-I", str(Path(__file__).resolve()), "inner", str(plan)]
        env = {**os.environ, **self.box.env}
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's binaries, not /usr/local's
        started = time.perf_counter()
        with self.paths.log.open("ab") as log:
            log.write(f"--- dockyard harness: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [*netns_exec, "unshare", "--mount", "--propagation", "private", *launcher],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        proc = self._proc

        def up() -> bool:
            if self._mntns is None and _exe(proc.pid) == DOCKERD:  # past the launcher
                self._mntns = _mount_ns(proc.pid)
            return proc.poll() is not None or _ping(self.paths.socket)

        try:
            ready = wait_until(up, self.start_timeout)
        except BaseException:  # an interrupted test leaves nothing running either
            with contextlib.suppress(DockerdError):
                self._teardown(kill_containers=False)
            raise
        if not ready or proc.poll() is not None:
            why = "did not answer in time" if proc.poll() is None else f"exited ({proc.poll()})"
            with contextlib.suppress(DockerdError):
                self._teardown(kill_containers=False)
            raise DockerdError(f"dockerd {why}; its log ends:\n{self.log_tail()}")
        self.timings["start"] = time.perf_counter() - started
        if self._mntns is None or self._mntns == _mount_ns(os.getpid()):
            self._teardown(kill_containers=False)
            raise DockerdError("dockerd is not in a mount namespace of its own")

    def stop(self, kill_containers: bool = True, timeout: float = 30.0) -> None:
        """Stops the daemon and everything it started; fails if anything is left.
        `kill_containers=False` leaves the running containers to dockerd's own shutdown (their
        stop signal, then its --shutdown-timeout), so `--restart` policies bring them back."""
        self._teardown(kill_containers, timeout)

    def restart(self, *flags: str, kill_containers: bool = True) -> None:
        """Stops and starts again with the same paths; with `flags`, these replace the
        previous ones."""
        self.stop(kill_containers)
        if flags:
            self.flags = tuple(flags)
        self.start()

    # -- inside ----------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self.configured.config_file.read_text())
        except FileNotFoundError:
            return {}
        return loaded

    def _effective_paths(self) -> Paths:
        """The paths, with those the private daemon.json sets taken from it (inside the
        sandbox only)."""
        self.configured.config_dir.mkdir(parents=True, exist_ok=True)
        if not self.configured.config_file.exists():
            self.configured.config_file.write_text("{}\n")
        for flag in self.flags:
            if flag.split("=", 1)[0] in OWNED_FLAGS:
                raise DockerdError(f"{flag}: the harness sets it (use paths or daemon.json)")
        config = self._config()
        for key in ("containerd", "cgroup-parent"):
            if key in config:
                raise DockerdError(f"daemon.json: {key}: the harness sets it")
        changes: dict[str, Path] = {
            k2: Path(config[k]) for k, k2 in _CONFIG_PATHS.items() if k in config
        }
        if "hosts" in config:
            hosts = [h for h in config["hosts"] if h.startswith("unix://")]
            if len(hosts) != len(config["hosts"]) or not hosts:
                raise DockerdError("daemon.json: hosts: only unix:// sockets in the sandbox")
            changes["socket"] = Path(hosts[0].removeprefix("unix://"))
        for key, path in changes.items():
            if not _within(path, self.box.base):
                raise DockerdError(f"daemon.json: {key} {path} is outside {self.box.base}")
        sock = changes.get("socket", self.configured.socket)
        if len(str(sock).encode()) > 107:  # sun_path: connect() would never succeed
            raise DockerdError(f"{sock}: too long for a unix socket")
        return dataclasses.replace(self.configured, **changes)

    def _plan(self) -> dict[str, Any]:
        if not Path(ETC_DOCKER).is_dir():
            raise DockerdError(f"{ETC_DOCKER} is missing (it comes with docker.io)")
        cgroups = cgroup_mounts(Path("/proc/self/mountinfo").read_text())
        if not cgroups:
            raise DockerdError(f"no cgroup hierarchy is mounted under {CGROUP_ROOT}")
        mounts = [
            *cgroups,
            Mount("tmpfs", "tmpfs", "/run", "mode=755,nosuid,nodev"),
            Mount("", str(self.paths.config_dir), ETC_DOCKER, bind=True),
        ]
        resolv = self.box.path("etc/resolv.conf")
        if resolv.is_file():
            mounts.append(Mount("", str(resolv), os.path.realpath(RESOLV_CONF), bind=True))
        return {"mounts": [dataclasses.asdict(m) for m in mounts], "argv": self.argv}

    def _teardown(self, kill_containers: bool = True, timeout: float = 30.0) -> None:
        proc = self._proc
        seen = self._leftover_pids()
        if proc is not None and proc.poll() is None:
            if kill_containers and _ping(self.paths.socket):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    running = self.docker("ps", "-q", timeout=15).stdout.split()
                    if running:
                        self.docker("kill", *running, timeout=30)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        elif proc is not None:
            proc.wait(1)
        left = self._kill_leftovers()
        self._proc = None
        # containerd's shims are orphans of pid 1 once they exit: give it a moment to reap
        # them, so that none of them is even a zombie when this returns.
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in seen), 5.0)
        if left:
            raise DockerdError(f"left behind after dockerd stopped: {left}")

    def _leftover_pids(self) -> set[int]:
        """Processes still in dockerd's mount namespace (containerd, shims, docker-proxy), or
        naming its exec root (containerd and shims, should dockerd die before its namespace is
        known), or in its cgroup subtree (the containers' own processes)."""
        pids: set[int] = set()
        own = _mount_ns(os.getpid())
        mntns = self._mntns if self._mntns != own else None
        exec_root = str(self.paths.exec_root).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            if mntns is not None and _mount_ns(int(entry.name)) == mntns:
                pids.add(int(entry.name))
                continue
            with contextlib.suppress(OSError):
                args = (entry / "cmdline").read_bytes().split(b"\0")
                if any(a == exec_root or a.startswith(exec_root + b"/") for a in args):
                    pids.add(int(entry.name))
        for top in self._cgroup_dirs:
            for procs in top.rglob("cgroup.procs") if top.is_dir() else ():
                with contextlib.suppress(OSError):
                    pids |= {int(p) for p in procs.read_text().split()}
        pids.discard(os.getpid())
        return pids

    def _kill_leftovers(self) -> list[str]:
        """Kills what is left, removes the cgroup subtree; what could not be cleaned."""
        pids = self._leftover_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not wait_until(lambda: not self._leftover_pids(), 10.0):
            return [f"pid {p}" for p in sorted(self._leftover_pids())]
        left: list[str] = []
        for top in self._cgroup_dirs:
            if not top.is_dir():
                continue
            dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            for d in [*dirs, top]:
                if not wait_until(lambda d=d: _rmdir(d), 5.0, 0.1):  # type: ignore[misc]
                    left.append(str(d))
        return left


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def private_dockerd(
    box: Sandbox, *flags: str, paths: Paths | None = None, start_timeout: float = 60.0
) -> Iterator[Dockerd]:
    """A private dockerd in `box` with `flags` passed through; stopped, with all it started, on
    exit (also when the body fails)."""
    daemon = Dockerd(box, paths or Paths.in_sandbox(box.base), flags, start_timeout)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def in_netns_http_get(
    box: Sandbox, host: str, port: int, path: str = "/", timeout: float = 10.0
) -> str:
    """The body of GET http://host:port/path made from inside the sandbox's namespace (real
    traffic), retried until `timeout` while the server is not up yet."""
    return netns_http_get(box.ns, host, port, path, timeout)


def netns_http_get(ns: str, host: str, port: int, path: str = "/", timeout: float = 10.0) -> str:
    """The same from inside network namespace `ns` (another namespace of the test's)."""
    argv = [sys.executable, "-c", _HTTP_GET, host, str(port), path, str(timeout)]
    done = subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    if done.returncode != 0:
        raise DockerdError(f"GET http://{host}:{port}{path} from {ns}: {done.stderr.strip()}")
    return done.stdout


_HTTP_GET = """
import http.client, sys, time
host, port, path, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
deadline = time.monotonic() + timeout
while True:
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        conn.request("GET", path)
        sys.stdout.write(conn.getresponse().read().decode())
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
"""


# -- the launcher, run inside the new namespaces ----------------------------------------------


def _inner(plan_path: str) -> NoReturn:
    plan = json.loads(Path(plan_path).read_text())
    for spec in plan["mounts"]:
        m = Mount(**spec)
        target = Path(m.target)
        if m.bind and not target.exists():  # a resolv.conf that lives under the new /run
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        elif not m.bind:
            target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(m.argv(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.stderr.write(f"dockyard harness: {' '.join(m.argv())}: {done.stderr}")
            sys.exit(1)
    argv: list[str] = plan["argv"]
    os.execv(argv[0], argv)


def _bench() -> None:
    from devtools.sandbox import sandbox

    with sandbox({"version": 1}) as box, private_dockerd(box) as d:
        d.import_busybox()
        started = time.perf_counter()
        d.docker("run", "--rm", "busybox", "true", check=True)
        d.timings["run"] = time.perf_counter() - started
        started = time.perf_counter()
        d.stop()
        d.timings["stop"] = time.perf_counter() - started
        print(" ".join(f"{k}={v:.2f}s" for k, v in d.timings.items()))


def main(argv: Sequence[str]) -> None:
    if len(argv) == 2 and argv[0] == "inner":
        _inner(argv[1])
    elif list(argv) == ["bench"]:
        _bench()
    else:
        sys.exit("usage: python -m devtools.dockerd bench")


if __name__ == "__main__":
    main(sys.argv[1:])
