"""Somewhere else on the network: a second namespace, "outside", joined to a sandbox's namespace
by a veth pair in 198.51.100.0/24 (TEST-NET-2), and a web server that answers with the address
it sees a request come from. Both are deleted by name, or stopped by pid, also on failure."""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.dockerd import BUSYBOX, netns_http_get
from devtools.sandbox import Sandbox, netns

SANDBOX_ADDRESS = "198.51.100.1"  # the sandbox's end of the veth
ADDRESS = "198.51.100.2"  # outside's end
PREFIX = 24
LINK = "dkyout0"  # the sandbox's end; outside's end is eth0
PEER_PATH = "/cgi-bin/peer"

# A CGI for busybox httpd: the body is REMOTE_ADDR, the peer address of the request's socket
# as the server saw it (after any NAT on the way).
PEER_CGI = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$REMOTE_ADDR\"\n"


def peer_site(directory: Path) -> Path:
    """A web root under `directory` whose /cgi-bin/peer answers with the client's address;
    its cgi-bin directory (to mount at /www/cgi-bin in a busybox container)."""
    cgi_bin = directory / "cgi-bin"
    cgi_bin.mkdir(parents=True, exist_ok=True)
    script = cgi_bin / "peer"
    script.write_text(PEER_CGI)
    script.chmod(0o755)
    return cgi_bin


@dataclass(frozen=True)
class Outside:
    ns: str
    base: Path  # a directory of its own, for its web root

    def http_get(self, host: str, port: int, path: str = "/", timeout: float = 15.0) -> str:
        """GET http://host:port/path from outside, retried until `timeout` while it fails."""
        return netns_http_get(self.ns, host, port, path, timeout)

    @contextlib.contextmanager
    def peer_server(self, port: int) -> Iterator[None]:
        """busybox httpd on ADDRESS:port outside, answering PEER_PATH with the client's
        address. Stopped by its pid afterwards."""
        root = self.base / f"www-{port}"
        peer_site(root)
        argv = [BUSYBOX, "httpd", "-f", "-p", f"{ADDRESS}:{port}", "-h", str(root)]
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # Up when it answers a request of outside's own (which comes from ADDRESS).
            assert self.http_get(ADDRESS, port, PEER_PATH) == f"{ADDRESS}\n"
            yield
        finally:
            stop(server)


@contextlib.contextmanager
def outside(box: Sandbox) -> Iterator[Outside]:
    """The outside namespace, its veth to `box`'s namespace up and addressed."""
    with netns("dkyo") as ns:

        def ip(*argv: str, check: bool = True) -> None:
            subprocess.run(["ip", *argv], check=check, timeout=30)

        try:
            ip("-n", box.ns, "link", "add", LINK, "type", "veth", "peer", "eth0", "netns", ns)
            for where, link, address in ((box.ns, LINK, SANDBOX_ADDRESS), (ns, "eth0", ADDRESS)):
                ip("-n", where, "addr", "add", f"{address}/{PREFIX}", "dev", link)
                ip("-n", where, "link", "set", link, "up")
            place = box.base / "outside"
            place.mkdir(exist_ok=True)
            yield Outside(ns, place)
        finally:
            ip("-n", box.ns, "link", "del", LINK, check=False)


# -- containers: a namespace with a veth on the sandbox's bridge (no container runtime) ------

_ports = itertools.count()


@dataclass(frozen=True)
class Container:
    ns: str
    address: str
    port: str  # its veth's end on the bridge, in the sandbox's namespace


@contextlib.contextmanager
def container(
    box: Sandbox, address: str, gateway: str, bridge: str = "docker0", prefix: int = 16
) -> Iterator[Container]:
    """A container as Docker 1.x wired one: its own namespace, eth0 at `address`, a default
    route via the bridge's address, the other end of the veth a port of `bridge`."""
    with netns("dkyc") as ns:
        port = f"dkyv{next(_ports)}"
        try:
            _ip("-n", box.ns, "link", "add", port, "type", "veth", "peer", "eth0", "netns", ns)
            _ip("-n", box.ns, "link", "set", port, "master", bridge, "up")
            _ip("-n", ns, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "route", "add", "default", "via", gateway)
            yield Container(ns, address, port)
        finally:
            _ip("-n", box.ns, "link", "del", port, check=False)


def _ip(*argv: str, check: bool = True) -> None:
    subprocess.run(["ip", *argv], check=check, timeout=30, capture_output=True)


# A server that answers every TCP line or UDP datagram with the address it came from and what
# it said: who the server saw is what NAT did on the way.
_SERVER = r"""
import socket, sys, threading
proto, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(f"{peer[0]} {data.decode().strip()}\n".encode(), peer)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((address, port))
s.listen(64)
print("ready", flush=True)
def serve(conn, peer):
    with conn, conn.makefile("rw") as f:
        for line in f:
            f.write(f"{peer[0]} {line.strip()}\n")
            f.flush()
while True:
    conn, peer = s.accept()
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
"""

# One exchange: connect (TCP) or send (UDP), say hello, print what came back, or why nothing.
_PROBE = r"""
import socket, sys
proto, host, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.settimeout(timeout)
try:
    s.connect((host, port))
    s.send(b"hello\n")
    print(s.recv(2048).decode().strip() or "closed")
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print(f"error {e.errno}")
"""


@contextlib.contextmanager
def server(ns: str, address: str, port: int, proto: str = "tcp") -> Iterator[None]:
    """The answering server in namespace `ns`, up when this yields; stopped by its pid."""
    argv = [sys.executable, "-c", _SERVER, proto, address, str(port)]
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n", proc.stderr.read() if proc.stderr else ""
        yield
    finally:
        stop(proc)


def probe(ns: str, host: str, port: int, proto: str = "tcp", timeout: float = 3.0) -> str:
    """From namespace `ns`: `ADDRESS hello` (the address the server saw), or `refused`,
    `timeout`, `error ERRNO`."""
    argv = [sys.executable, "-c", _PROBE, proto, host, str(port), str(timeout)]
    done = subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=True,
    )
    return done.stdout.strip()


def stop(proc: subprocess.Popen[Any]) -> None:
    """End a server of the test's: SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
