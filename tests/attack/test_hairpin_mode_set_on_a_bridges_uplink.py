"""With `userland_proxy: false`, dockyard turns hairpin mode on for *every* port of the bridge,
including one that is not a container's: the uplink of a bridge adopted with `existing: true`
(Docker's `-b br0` with the host's NIC enslaved, the classic setup it exists for). The bridge
then sends every broadcast that arrives on the uplink back out of the uplink, to the LAN it
came from (a reflected ARP request, a switch that sees the sender's MAC flap to this port).

Docker 1.7 set hairpin mode only on the container's own veth, the moment it attached it
(libnetwork drivers/bridge/bridge.go, CreateEndpoint: `LinkSetMaster(host, bridge)` then
`if !config.EnableUserlandProxy { netlink.LinkSetHairpin(host, true) }`); it never touched
other ports of the bridge.

Evidence by traffic: an "uplink" namespace on a veth enslaved to the adopted bridge sends one
Ethernet broadcast frame; before dockyard's run nothing comes back, after it the frame comes
back to the sender through the port it left by.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from devtools.sandbox import Sandbox, netns

pytestmark = pytest.mark.root

GATEWAY = "172.17.42.1"

# Sends one broadcast frame out of eth0 and counts the copies of it that come back in.
_ECHO = r"""
import os, socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
s.bind(("eth0", 0x88B5))
mac = s.getsockname()[4]
payload = b"dockyard-attack-" + os.urandom(8)
s.send(b"\xff" * 6 + mac + b"\x88\xb5" + payload)
s.settimeout(0.2)
back, end = 0, time.monotonic() + 1.0
while time.monotonic() < end:
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    if addr[2] != socket.PACKET_OUTGOING and payload in data:
        back += 1
print(back)
"""


def reflected(ns: str) -> int:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", _ECHO],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return int(done.stdout)


def test_hairpin_mode_only_on_container_ports_never_on_an_uplink(box: Sandbox) -> None:
    box.run(["ip", "link", "add", "docker0", "type", "bridge"], check=True)
    box.run(["ip", "addr", "add", f"{GATEWAY}/16", "dev", "docker0"], check=True)
    box.run(["ip", "link", "set", "docker0", "up"], check=True)
    with netns("dkyup") as lan:
        uplink = "dkyup0"
        try:
            subprocess.run(
                [
                    "ip",
                    "-n",
                    box.ns,
                    "link",
                    "add",
                    uplink,
                    "type",
                    "veth",
                    "peer",
                    "eth0",
                    "netns",
                    lan,
                ],
                check=True,
            )
            box.run(["ip", "link", "set", uplink, "master", "docker0", "up"], check=True)
            subprocess.run(["ip", "-n", lan, "link", "set", "eth0", "up"], check=True)
            assert reflected(lan) == 0  # the control: a bridge never reflects by itself

            box.write_spec(
                {"version": 1, "network": {"bridge": {"existing": True}, "userland_proxy": False}}
            )
            result = box.reconcile("SPEC")
            assert result.returncode == 0, result.stdout + result.stderr
            mode = box.run(["cat", f"/sys/class/net/{uplink}/brport/hairpin_mode"], check=True)
            assert mode.stdout.strip() == "0", result.stdout
            assert reflected(lan) == 0
        finally:
            box.run(["ip", "link", "del", uplink])
