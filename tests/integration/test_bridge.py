"""The bridge reconciler against the real kernel, each test in its own network namespace."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.sandbox import Sandbox
from dockyard.reconcilers.bridge import derived_mac

pytestmark = pytest.mark.root


def ip(box: Sandbox, *args: str) -> str:
    result = box.run(["ip", *args])
    assert result.returncode == 0, result.stderr
    return result.stdout


def link(box: Sandbox, name: str = "docker0") -> dict[str, Any] | None:
    result = box.run(["ip", "-j", "-d", "addr", "show", "dev", name])
    if result.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(result.stdout)[0]
    return found


def addresses(box: Sandbox, name: str = "docker0") -> list[str]:
    info = link(box, name) or {"addr_info": []}
    return [f"{a['local']}/{a['prefixlen']}" for a in info["addr_info"] if a["family"] == "inet"]


def converge(box: Sandbox) -> None:
    result = box.reconcile("SPEC")
    assert result.returncode == 0, result.stdout + result.stderr


def plan(box: Sandbox) -> tuple[int, str]:
    result = box.reconcile("plan", "SPEC", "--detailed-exitcode")
    return result.returncode, result.stdout


def bridge_plan(box: Sandbox) -> dict[str, Any]:
    doc = json.loads(box.reconcile("plan", "SPEC", "-o", "json").stdout)
    changes = [c for c in doc["changes"] if c["reconciler"] == "bridge"]
    assert len(changes) <= 1
    return changes[0] if changes else {}


def dummy(box: Sandbox, name: str, *cidrs: str, mtu: int = 1500) -> None:
    """A stand-in uplink carrying `cidrs`. This kernel has no dummy driver, so it is one end of
    a veth pair whose other end stays in the namespace too (both up, so the link has carrier)."""
    ip(box, "link", "add", name, "mtu", str(mtu), "type", "veth", "peer", "name", f"{name}p")
    ip(box, "link", "set", f"{name}p", "up")
    ip(box, "link", "set", name, "up")
    for cidr in cidrs:
        ip(box, "addr", "add", cidr, "dev", name)


def test_from_nothing(box: Sandbox) -> None:
    converge(box)
    info = link(box)
    assert info is not None
    assert info["linkinfo"]["info_kind"] == "bridge"
    assert addresses(box) == ["172.17.42.1/16"]
    assert info["mtu"] == 1500
    assert info["address"] == derived_mac("docker0")
    assert "UP" in info["flags"]
    assert plan(box) == (0, "No changes. The host matches the spec.\n")


def test_a_route_on_172_17_moves_auto_to_the_next_candidate(box: Sandbox) -> None:
    dummy(box, "dummy0", "172.17.0.1/16")
    assert bridge_plan(box)["after"]["address"] == "10.0.42.1/16"
    converge(box)
    assert addresses(box) == ["10.0.42.1/16"]


@pytest.mark.parametrize("kind", ["blackhole", "unreachable", "prohibit"])
def test_a_route_to_nowhere_rules_out_its_range(box: Sandbox, kind: str) -> None:
    box.run(["ip", "route", "add", kind, "172.17.0.0/16"], check=True)
    box.run(["ip", "route", "add", kind, "10.0.0.0/15"], check=True)
    converge(box)
    assert addresses(box) == ["10.42.42.1/16"]
    show = json.loads(box.reconcile("show", "SPEC", "-o", "json").stdout)
    reasons = [c.get("reason") for c in show["observed"]["bridge"]["planned"]["candidates"][:3]]
    assert reasons == [
        f"overlaps {kind} route 172.17.0.0/16",
        f"overlaps {kind} route 10.0.0.0/15",
        f"overlaps {kind} route 10.0.0.0/15",
    ]


def test_a_nameserver_rules_out_its_range_too(box: Sandbox) -> None:
    dummy(box, "dummy0", "172.17.0.1/16")
    Path(box.spec["dns"]["host_resolv_conf"]).write_text("nameserver 10.0.0.2\n")
    converge(box)
    assert addresses(box) == ["10.1.42.1/16"]
    show = json.loads(box.reconcile("show", "SPEC", "-o", "json").stdout)
    candidates = show["observed"]["bridge"]["planned"]["candidates"]
    assert candidates[:3] == [
        {
            "range": "172.17.42.1/16",
            "usable": False,
            "reason": "overlaps route 172.17.0.0/16 dev dummy0",
        },
        {
            "range": "10.0.42.1/16",
            "usable": False,
            "reason": f"holds nameserver 10.0.0.2 of {box.spec['dns']['host_resolv_conf']}",
        },
        {"range": "10.1.42.1/16", "usable": True},
    ]


def test_vpn_split_default_routes_via_a_gateway_do_not_block(box: Sandbox) -> None:
    dummy(box, "tun0", "10.8.0.2/24")
    ip(box, "route", "add", "default", "via", "10.8.0.1")
    ip(box, "route", "add", "0.0.0.0/1", "via", "10.8.0.1")
    ip(box, "route", "add", "128.0.0.0/1", "via", "10.8.0.1")
    converge(box)
    assert addresses(box) == ["172.17.42.1/16"]


def test_no_free_candidate_is_a_clear_error(box: Sandbox) -> None:
    dummy(box, "dummy0")
    ip(box, "route", "add", "0.0.0.0/1", "dev", "dummy0")
    ip(box, "route", "add", "128.0.0.0/1", "dev", "dummy0")
    result = box.reconcile("SPEC")
    assert result.returncode == 1
    assert "no free subnet for docker0" in result.stderr
    assert "set network.bridge.address" in result.stderr
    assert link(box) is None


def test_mtu_auto_follows_the_default_route_interface(box: Sandbox) -> None:
    dummy(box, "uplink0", "192.0.2.10/24", mtu=1400)
    ip(box, "route", "add", "default", "via", "192.0.2.1")
    converge(box)
    info = link(box)
    assert info is not None and info["mtu"] == 1400


@pytest.mark.parametrize(
    ("drift", "reason"),
    [
        (["link", "del", "docker0"], "+ bridge docker0  (does not exist)"),
        (["addr", "flush", "dev", "docker0"], "~ bridge docker0  (missing its address)"),
        (["link", "set", "docker0", "mtu", "1400"], "~ bridge docker0  (mtu differs)"),
        (["link", "set", "docker0", "down"], "~ bridge docker0  (link is down)"),
        (
            ["link", "set", "docker0", "address", "02:00:00:00:00:01"],
            "~ bridge docker0  (mac differs)",
        ),
    ],
    ids=["deleted", "address-removed", "mtu-changed", "set-down", "mac-changed"],
)
def test_drift_is_detected_and_corrected(box: Sandbox, drift: list[str], reason: str) -> None:
    converge(box)
    ip(box, *drift)
    code, text = plan(box)
    assert code == 2
    assert reason in text
    converge(box)
    assert plan(box) == (0, "No changes. The host matches the spec.\n")
    info = link(box)
    assert info is not None and info["mtu"] == 1500 and "UP" in info["flags"]
    assert addresses(box) == ["172.17.42.1/16"]


def test_a_hand_added_address_is_left_alone(box: Sandbox) -> None:
    converge(box)
    ip(box, "addr", "add", "10.99.0.1/24", "dev", "docker0")
    assert plan(box)[0] == 0
    converge(box)
    assert addresses(box) == ["172.17.42.1/16", "10.99.0.1/24"]


def test_the_auto_choice_sticks_when_a_route_appears_later(box: Sandbox) -> None:
    converge(box)
    dummy(box, "dummy0", "172.17.200.1/24")
    assert plan(box)[0] == 0
    ledger = json.loads(Path(box.spec["state_dir"], "ledger.json").read_text())
    assert ledger["owned"]["bridge"]["docker0"]["address"] == "172.17.42.1/16"
    assert ledger["owned"]["bridge"]["docker0"]["created"] is True


def test_an_explicit_address_replaces_the_old_one(box: Sandbox) -> None:
    converge(box)
    ip(box, "addr", "add", "10.99.0.1/24", "dev", "docker0")
    box.write_spec({"version": 1, "network": {"bridge": {"address": "10.9.0.1/24"}}})
    code, text = plan(box)
    assert code == 2
    assert (
        "~ bridge docker0  (address differs)\n      address: 172.17.42.1/16 -> 10.9.0.1/24" in text
    )
    converge(box)
    assert addresses(box) == ["10.99.0.1/24", "10.9.0.1/24"]
    assert plan(box)[0] == 0


def test_an_existing_bridge_is_adopted_not_recreated(box: Sandbox) -> None:
    ip(box, "link", "add", "docker0", "type", "bridge")
    ip(box, "link", "set", "docker0", "mtu", "1400")
    index = link(box)["ifindex"]  # type: ignore[index]
    change = bridge_plan(box)
    assert change["action"] == "update"
    converge(box)
    info = link(box)
    assert info is not None and info["ifindex"] == index and info["mtu"] == 1500


def test_existing_true_adopts_without_managing(box: Sandbox) -> None:
    ip(box, "link", "add", "br-ext", "type", "bridge")
    ip(box, "addr", "add", "10.20.0.1/16", "dev", "br-ext")
    box.write_spec({"version": 1, "network": {"bridge": {"name": "br-ext", "existing": True}}})
    converge(box)
    assert addresses(box, "br-ext") == ["10.20.0.1/16"]
    info = link(box, "br-ext")
    assert info is not None and "UP" not in info["flags"]
    assert plan(box)[0] == 0


def test_existing_true_without_the_bridge_is_an_error(box: Sandbox) -> None:
    box.write_spec({"version": 1, "network": {"bridge": {"name": "br-ext", "existing": True}}})
    result = box.reconcile("SPEC")
    assert result.returncode == 1
    assert "br-ext does not exist; network.bridge.existing: true adopts a bridge" in result.stderr


def test_a_link_of_another_kind_with_the_name_is_left_alone(box: Sandbox) -> None:
    dummy(box, "docker0", "192.0.2.7/24")
    result = box.reconcile("SPEC")
    assert result.returncode == 1
    assert "docker0 exists but is a veth link, not a bridge; it is left alone" in result.stderr
    assert addresses(box) == ["192.0.2.7/24"]


def test_networking_disabled_makes_no_bridge_and_says_so_once(box: Sandbox) -> None:
    box.write_spec({"version": 1, "network": {"bridge": {"name": "none"}}})
    result = box.reconcile("SPEC")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("networking is disabled") == 1
    assert link(box) is None
    assert box.sysctl("net.ipv4.ip_forward") == "0"


def test_our_netlink_reader_agrees_with_pyroute2(box: Sandbox) -> None:
    converge(box)
    dummy(box, "dummy0", "10.5.0.1/24", "10.6.0.1/16")
    result = box.run([sys.executable, str(Path(__file__).parent / "compare_netlink.py")])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, True, True]


def test_a_kernel_refusal_comes_with_its_own_words(box: Sandbox) -> None:
    """The extended acknowledgement: the kernel says why, not only EINVAL."""
    dummy(box, "dummy0")
    code = (
        "from dockyard.state import netlink\n"
        "[link] = [x for x in netlink.links() if x.name == 'dummy0']\n"
        "try:\n"
        "    netlink.set_link(link.index, mtu=10)\n"
        "except netlink.NetlinkError as e:\n"
        "    print(e.errno, e.strerror)\n"
    )
    result = box.run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "22 Invalid argument: mtu less than device minimum\n"


@pytest.mark.parametrize("damage", ["garbage", 5, None, "172.17.42.1", "300.1.1.1/16", ["x"]])
def test_a_damaged_recorded_address_is_chosen_afresh(box: Sandbox, damage: object) -> None:
    """The ledger's record of the auto choice, damaged or edited by hand, and the bridge gone:
    it is made again on the first free candidate, with no internal error and no address
    taken from the damage (`5` once meant 0.0.0.5/32)."""
    converge(box)
    path = Path(box.spec["state_dir"], "ledger.json")
    ledger = json.loads(path.read_text())
    ledger["owned"]["bridge"]["docker0"]["address"] = damage
    path.write_text(json.dumps(ledger))
    ip(box, "link", "del", "docker0")
    code, text = plan(box)
    assert code == 2, text
    assert "address: 172.17.42.1/16" in text
    converge(box)
    assert addresses(box) == ["172.17.42.1/16"]
