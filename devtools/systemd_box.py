"""A real systemd manager, confined to namespaces created here, for testing what a playbook
does to units (`ansible.builtin.systemd_service`: enable, start, daemon-reload).

This machine's PID 1 is not systemd. The box starts this machine's own `/lib/systemd/systemd`
as PID 1 of a new PID namespace, with new mount, network, UTS, IPC and cgroup namespaces, the
way a container manager (systemd-nspawn) would:

- its root is an overlay whose lower layer is this machine's `/` and whose upper layer is a
  tmpfs of the box's mount namespace: everything it writes (units, enable symlinks, /opt,
  /var) is gone with the box; the machine's own /etc/systemd is never written;
- /proc/sys and /sys are read-only (/proc/sys/net, which belongs to the box's own network
  namespace, stays writable), /proc/sysrq-trigger is read-only, /dev is a tmpfs with a few
  device nodes of its own, /run and /tmp are tmpfs;
- the manager and its services lose the capabilities that reach the whole machine (the clock,
  kernel modules, raw I/O...) from their bounding set; its network is a namespace of its own
  with only loopback;
- its cgroup tree is a directory created here in the machine's cgroup2 hierarchy (the root of
  the box's cgroup namespace), removed by name afterwards;
- it boots into a target of its own that starts sysinit.target only (none of the services
  this machine's /etc enables); what a test starts then finds a booted system, as on a host.

`shared`, a directory of the caller's, is bound at the same path inside once boot is done
(sysinit empties /tmp; it does not cross a mount point), so the Ansible
controller outside and its modules inside see the same temporary files. Modules reach the box
through `python_wrapper()`: `nsenter` into all of its namespaces and its root.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SYSTEMD = "/lib/systemd/systemd"
TARGET = "dockyard-box.target"
# Where `shared` waits inside until boot is done (sysinit's systemd-tmpfiles empties /tmp).
STAGING = "dky-box-shared"

# The capabilities the manager keeps (systemd-nspawn's default set, with CAP_NET_ADMIN as it
# adds for a private network); every other one is dropped from its bounding set.
CAPABILITIES = (
    "chown,dac_override,dac_read_search,fowner,fsetid,ipc_owner,kill,lease,linux_immutable,"
    "mknod,net_bind_service,net_broadcast,net_raw,setfcap,setgid,setpcap,setuid,sys_admin,"
    "sys_boot,sys_chroot,sys_nice,sys_ptrace,sys_tty_config,audit_write,net_admin"
)

# Runs as PID 1 of the new namespaces: builds the root, then becomes systemd. Its values come
# as arguments ($1...), never inside the script's text.
_BOOT = r"""
set -eu
box=$1 shared=$2 systemd=$3 target=$4 caps=$5 staging=$6
root=$box/root
mount -t tmpfs -o mode=0755 dky-box-layers "$box/layers"
mkdir "$box/layers/upper" "$box/layers/work"
mount -t overlay -o "lowerdir=/,upperdir=$box/layers/upper,workdir=$box/layers/work" \
    dky-box-root "$root"
mount -t proc proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
mount --bind "$root/proc/sys/net" "$root/proc/sys/net"
mount -o remount,bind,rw "$root/proc/sys/net"
if [ -e "$root/proc/sysrq-trigger" ]; then
    mount --bind "$root/proc/sysrq-trigger" "$root/proc/sysrq-trigger"
    mount -o remount,bind,ro "$root/proc/sysrq-trigger"
fi
mount -t sysfs -o ro sysfs "$root/sys"
mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup"
mount -t tmpfs -o mode=0755 dky-box-dev "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/zero" c 1 5
mknod -m 666 "$root/dev/full" c 1 7
mknod -m 666 "$root/dev/random" c 1 8
mknod -m 666 "$root/dev/urandom" c 1 9
mknod -m 666 "$root/dev/tty" c 5 0
mkdir "$root/dev/pts" "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
mount -t tmpfs -o mode=0755 dky-box-run "$root/run"
mount -t tmpfs -o mode=1777 dky-box-tmp "$root/tmp"
mkdir -p "$root/run/systemd/system" "$root/$staging"
mount --bind "$shared" "$root/$staging"
printf '[Unit]\nDescription=dockyard test box\nRequires=sysinit.target\nAfter=sysinit.target\n' \
    > "$root/run/systemd/system/$target"
ip link set lo up
hostname dky-box
cd "$root"
exec env -i container=dockyard-box PATH="$PATH" chroot . \
    setpriv --bounding-set="-all,$caps" "$systemd" --unit="$target"
"""

_counter = itertools.count()


@dataclass
class SystemdBox:
    """A running box: `pid` is its systemd (PID 1 inside) as this machine numbers it."""

    pid: int
    shared: Path

    @property
    def root(self) -> Path:
        """The box's root as seen from here (the kernel's view of PID 1's root)."""
        return Path(f"/proc/{self.pid}/root")

    def enter(self) -> list[str]:
        """The command prefix that runs a program inside the box."""
        return [
            "nsenter",
            f"--target={self.pid}",
            "--mount",
            "--pid",
            "--net",
            "--uts",
            "--ipc",
            "--cgroup",
            "--root",
            "--wd",
            "--",
        ]

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """`argv` inside the box, its output captured; its exit code is the caller's to judge."""
        return subprocess.run(
            [*self.enter(), *argv], capture_output=True, text=True, check=False, env=_plain()
        )

    def systemctl(self, *args: str) -> str:
        """`systemctl args` inside the box: its standard output, stripped."""
        return self.run(["systemctl", *args]).stdout.strip()

    def python_wrapper(self, path: Path, python: str) -> Path:
        """A program at `path` that runs `python` inside the box (`ansible_python_interpreter`)."""
        path.write_text(
            "#!/bin/sh\n"
            f"# Ansible modules run inside the systemd box whose manager is pid {self.pid}.\n"
            f'exec {shlex.join(self.enter())} {shlex.quote(python)} "$@"\n'
        )
        path.chmod(0o755)
        return path


def _plain() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}


def _cgroup2() -> Path:
    """Where this machine's cgroup2 hierarchy is mounted (hybrid or unified)."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "cgroup2":
            return Path(fields[1])
    raise RuntimeError("no cgroup2 hierarchy mounted: systemd cannot run in a box here")


def _remove_cgroup(top: Path) -> None:
    """rmdir the box's cgroup tree, deepest first; its processes may take a moment to go."""
    for _ in range(50):
        if not top.exists():
            return
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        with contextlib.suppress(OSError):
            for d in [*dirs, top]:
                d.rmdir()
        time.sleep(0.1)
    raise RuntimeError(f"cgroup {top} still holds processes")


def _wait_running(box: SystemdBox, boot: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        if boot.poll() is not None:
            _, err = boot.communicate()
            raise RuntimeError(f"the box's systemd ended ({boot.returncode}): {err}")
        with contextlib.suppress(OSError):
            if box.root.joinpath("run/systemd/private").exists():
                state = box.systemctl("is-system-running")
                if state in ("running", "degraded"):
                    return
        time.sleep(0.05)
    raise RuntimeError(f"the box's systemd did not come up (state {state!r})")


def _share(box: SystemdBox) -> None:
    """Bind `shared` at its own path inside, now that boot has emptied /tmp."""
    bound = box.run(
        [
            "sh",
            "-c",
            'mkdir -p "$2" && mount --bind "$1" "$2"',
            "share",
            f"/{STAGING}",
            str(box.shared),
        ]
    )
    if bound.returncode != 0:
        raise RuntimeError(f"cannot share {box.shared} with the box: {bound.stderr}")


def _manager_pid(unshare: int, timeout: float) -> int:
    """The box's PID 1: the child `unshare --fork` started (sh, then systemd by exec)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{unshare}/task/{unshare}/children")
        with contextlib.suppress(OSError):
            pids = children.read_text().split()
            if pids:
                return int(pids[0])
        time.sleep(0.01)
    raise RuntimeError("unshare did not start the box's PID 1")


@contextlib.contextmanager
def systemd_box(shared: Path, prefix: str = "dky-box", timeout: float = 30) -> Iterator[SystemdBox]:
    """A box whose systemd is up (`is-system-running`: running); killed, and its cgroup
    removed by name, when the block ends, also on failure."""
    name = f"{prefix}-{os.getpid()}-{next(_counter)}"
    cgroup = _cgroup2() / name
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        base = Path(tmp)
        (base / "layers").mkdir()
        (base / "root").mkdir()
        cgroup.mkdir()
        boot: subprocess.Popen[str] | None = None
        try:
            boot = subprocess.Popen(
                [
                    "sh",
                    "-c",
                    'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
                    "enter-cgroup",
                    str(cgroup),
                    "unshare",
                    "--mount",
                    "--propagation=private",
                    "--pid",
                    "--fork",
                    "--net",
                    "--uts",
                    "--ipc",
                    "--cgroup",
                    "sh",
                    "-c",
                    _BOOT,
                    "boot",
                    str(base),
                    str(shared),
                    SYSTEMD,
                    TARGET,
                    ",".join(f"+{c}" for c in CAPABILITIES.split(",")),
                    STAGING,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=_plain(),
            )
            box = SystemdBox(_manager_pid(boot.pid, timeout), shared)
            _wait_running(box, boot, timeout)
            _share(box)
            yield box
        finally:
            if boot is not None:
                # SIGKILL to the namespace's PID 1 ends every process of the namespace.
                with contextlib.suppress(RuntimeError, ProcessLookupError):
                    os.kill(_manager_pid(boot.pid, 0.5), signal.SIGKILL)
                boot.kill()
                boot.wait()
            _remove_cgroup(cgroup)
