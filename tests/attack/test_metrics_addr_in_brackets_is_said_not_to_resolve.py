"""`--metrics-addr [::1]:9323` is how an IPv6 address and a port are written (RFC 3986, and
Docker's own `--metrics-addr`), but the address was split at its last ':' and the host
`[::1]`, brackets and all, handed to the resolver: the watch stopped with "host '[::1]' does
not resolve", which is not the cause (only `::1:9323`, which reads as an address of nine
groups, worked). The brackets are now the address's, and the listener is on ::1.

Run in a network namespace of its own (loopback only)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devtools.sandbox import netns
from dockyard import cli

pytestmark = pytest.mark.root

SERVE = """
import urllib.request
from dockyard.watch import Metrics
metrics = Metrics("[::1]:9323", None)
try:
    with urllib.request.urlopen("http://[::1]:9323/metrics", timeout=5) as reply:
        print(reply.status, b"dockyard_passes" in reply.read())
finally:
    metrics.close()
"""


def test_a_bracketed_ipv6_address_is_served_on() -> None:
    with netns("dky-a12m") as ns:
        result = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SERVE],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert (result.stdout, result.stderr) == ("200 True\n", "")


@pytest.mark.parametrize(
    "text", ["[::1]", "[::1]:", "[::1]x:9323", "[::1:9323", "[]:9323", "[::1]:0"]
)
def test_a_bracket_left_open_or_a_missing_port_is_refused(text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError) as e:
        cli._address(text)
    assert str(e.value) == f"HOST:PORT such as 127.0.0.1:9323, not {text!r}"
