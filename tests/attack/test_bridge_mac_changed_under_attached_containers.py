"""A host where dockerd made docker0 (the usual way to come to dockyard: Docker is already
there) runs containers on it. The first `reconcile` with the default spec (`mac` not given:
derived from the bridge's name) changes docker0's MAC under them: every container keeps the old
MAC of its gateway in its neighbour table, so all its traffic through the host stops until that
entry expires and is probed again. Measured with a real dockerd 20.10 (devtools/dockerd.py): a
running busybox container could not reach outside nor ping 172.17.0.1 for 50 seconds after the
apply. Nobody asked for that MAC: it is dockyard's default for a bridge it creates.

What is expected: while ports are attached, a MAC the spec does not name is left as found, and
the plan says why (it is set once no port is attached); a `mac` given in the spec is still set,
as asked."""

from __future__ import annotations

from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.bridge import Bridge, BridgeLink, BridgeObserved, derived_mac
from dockyard.spec import load_text

DOCKERDS = "02:42:5c:b8:aa:2b"


def seen(ports: tuple[str, ...]) -> Seen:
    link = BridgeLink("docker0", "bridge", 1500, DOCKERDS, True, ("172.17.0.1/16",), ports)
    s = Seen()
    s.add("bridge", BridgeObserved(link=link, default_mtu=None))
    return s


def test_a_derived_mac_waits_while_containers_are_attached() -> None:
    spec = load_text("version: 1\n")
    busy = seen(("veth1a2b3c",))
    assert Bridge().diff(spec, busy) == []
    notes = [n for n in Bridge().check(spec, busy) if "mac" in n.message]
    assert [(n.severity, n.message) for n in notes] == [
        (
            "info",
            f"docker0 keeps its MAC {DOCKERDS} while 1 port(s) are attached (veth1a2b3c): "
            f"containers would lose their gateway until they learn it again; dockyard's "
            f"{derived_mac('docker0')} is set once none is, or now with network.bridge.mac",
        )
    ]


def test_with_no_port_attached_the_derived_mac_is_set() -> None:
    spec = load_text("version: 1\n")
    [change] = Bridge().diff(spec, seen(()))
    assert change.reason == "mac differs"
    assert change.after is not None and change.after["mac"] == derived_mac("docker0")


def test_a_mac_the_spec_names_is_set_even_with_ports() -> None:
    spec = load_text("version: 1\nnetwork: {bridge: {mac: '02:00:00:00:00:01'}}\n")
    [change] = Bridge().diff(spec, seen(("veth1a2b3c",)))
    assert change.after is not None and change.after["mac"] == "02:00:00:00:00:01"
