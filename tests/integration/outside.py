"""Somewhere else on the network: a second namespace, "outside", joined to a sandbox's namespace
by a veth pair in 198.51.100.0/24 (TEST-NET-2), and a web server that answers with the address
it sees a request come from. Both are deleted by name, or stopped by pid, also on failure."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)


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
