"""The network fields of issue 14 without a host: ip_forward's three values, userland_proxy,
br_netfilter's settings and module, each message exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.change import Change
from dockyard.errors import DockyardError, SpecError
from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.bridge_netfilter import (
    IPV4,
    IPV6,
    BridgeNetfilter,
    BridgeNetfilterObserved,
)
from dockyard.reconcilers.hairpin import Hairpin, HairpinObserved, loopback_bound
from dockyard.reconcilers.ip_forward import wanted
from dockyard.spec import load_text
from dockyard.state import sysctl
from dockyard.state.host import Host

IP_FORWARD_WANTED = (
    "must be true (set net.ipv4.ip_forward to 1), false (leave it as it is, as Docker's "
    "--ip-forward=false did) or disable (set it to 0)"
)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    return e.value.problems


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("off", "'off'"),
        ("'off'", "'off'"),
        ("no", "'no'"),
        ("0", "0"),
        ("1", "1"),
        ("null", "null"),
    ],
)
def test_ip_forward_takes_true_false_or_disable_only(value: str, shown: str) -> None:
    """`off` is refused rather than read: YAML 1.1 (PyYAML, Ansible) reads it as false, which
    here means "leave forwarding as it is", the opposite of what it says."""
    assert problems(f"version: 1\nnetwork:\n  ip_forward: {value}\n") == [
        f"spec.yaml:3:15: network.ip_forward: {IP_FORWARD_WANTED}, got {shown}"
    ]


def test_an_unquoted_off_means_the_same_to_both_parsers() -> None:
    """An alias sends the file to PyYAML instead of yaml-rs: YAML 1.2's booleans for both."""
    text = "version: 1\nnetwork: &net\n  ip_forward: off\n"
    assert problems(text) == [f"spec.yaml:3:15: network.ip_forward: {IP_FORWARD_WANTED}, got 'off'"]
    # A plain bool field still takes yes/no as before, whichever parser reads it.
    for text in ("version: 1\nnetwork:\n  icc: no\n", "version: 1\nnetwork: &n\n  icc: no\n"):
        assert load_text(text).network.icc is False


@pytest.mark.parametrize(("value", "meaning"), [("true", 1), ("false", None), ("disable", 0)])
def test_ip_forward_false_leaves_the_setting_alone(value: str, meaning: int | None) -> None:
    spec = load_text(f"version: 1\nnetwork:\n  ip_forward: {value}\n")
    assert wanted(spec) == meaning
    assert wanted(load_text("version: 1\nnetwork: {bridge: {name: none}}\n")) is None


def test_userland_proxy_is_a_boolean_true_by_default() -> None:
    assert load_text("version: 1\n").network.userland_proxy is True
    assert (
        load_text("version: 1\nnetwork: {userland_proxy: false}\n").network.userland_proxy is False
    )
    assert problems("version: 1\nnetwork:\n  userland_proxy: maybe\n") == [
        "spec.yaml:3:19: network.userland_proxy: must be true or false, got 'maybe'"
    ]


def test_ports_that_listen_on_loopback_only_are_counted() -> None:
    spec = load_text(
        "version: 1\nnetwork:\n  default_bind_ip: 127.0.0.1\n  published_ports:\n"
        "    - {host_port: 1, container_ip: 172.17.0.2, container_port: 1}\n"
        "    - {host_ip: 0.0.0.0, host_port: 2, container_ip: 172.17.0.2, container_port: 2}\n"
        "    - {host_ip: 127.0.0.2, host_port: 3, container_ip: 172.17.0.2, container_port: 3}\n"
    )
    assert loopback_bound(spec) == 2
    # The warning counts them once per spec; another spec is counted afresh.
    hairpin, seen = Hairpin(), Seen()
    assert "2 published port(s)" in hairpin.check(spec, seen)[0].message
    assert "2 published port(s)" in hairpin.check(spec, seen)[0].message
    other = load_text(
        "version: 1\nnetwork:\n  published_ports:\n"
        "    - {host_ip: 127.0.0.9, host_port: 1, container_ip: 172.17.0.2, container_port: 1}\n"
    )
    assert "1 published port(s)" in hairpin.check(other, seen)[0].message


def fake_proc(tmp_path: Path, bridge: dict[str, str] | None) -> Path:
    proc = tmp_path / "proc"
    (proc / "sys/net/ipv4").mkdir(parents=True)
    if bridge is not None:
        (proc / "sys/net/bridge").mkdir(parents=True)
        for name, value in bridge.items():
            (proc / "sys/net/bridge" / name).write_text(value)
    return proc


def host_with(tmp_path: Path, proc: Path, path: str) -> Host:
    return Host(
        root=tmp_path / "root", state_dir=tmp_path / "state", proc=proc, environ={"PATH": path}
    )


def test_settings_are_read_per_name_and_missing_ones_are_none(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {"bridge-nf-call-iptables": "0\n"})
    empty = tmp_path / "bin"
    empty.mkdir()
    got = BridgeNetfilter().observe(
        load_text("version: 1\n"), host_with(tmp_path, proc, str(empty))
    )
    assert got.values == {IPV4: 0, IPV6: None}
    sysctl.write(proc, IPV4.split("."), 1)
    assert sysctl.read(proc, IPV4.split(".")) == 1
    assert sysctl.read(proc, ("net", "ipv4", "conf", "br.1", "route_localnet")) is None


def test_a_setting_that_is_not_a_number_is_an_error_naming_it(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {"bridge-nf-call-iptables": "on\n"})
    with pytest.raises(DockyardError) as e:
        sysctl.read(proc, IPV4.split("."))
    assert str(e.value) == f"{sysctl.path(proc, IPV4.split('.'))} holds 'on', not a number"


def fake_modprobe(tmp_path: Path, exit_status: int) -> Path:
    """A stand-in for modprobe (no module can be loaded on this kernel: br_netfilter is built
    in and there is no /lib/modules); it records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / "modprobe"
    program.write_text(
        f'#!/bin/sh\necho "$@" >> {tmp_path}/modprobe.args\n'
        f"[ {exit_status} = 0 ] || echo 'FATAL: Module br_netfilter not found.' >&2\n"
        f"exit {exit_status}\n"
    )
    program.chmod(0o755)
    return bin_dir


def plan_for(spec_text: str, observed: BridgeNetfilterObserved) -> list[Change]:
    seen = Seen()
    seen.add("bridge_netfilter", observed)
    return BridgeNetfilter().diff(load_text(spec_text), seen)


def test_a_missing_module_is_loaded_with_modprobe(
    tmp_path: Path,
) -> None:
    bin_dir = fake_modprobe(tmp_path, 0)
    proc = fake_proc(tmp_path, None)
    host = host_with(tmp_path, proc, str(bin_dir))
    observed = BridgeNetfilter().observe(load_text("version: 1\n"), host)
    assert observed.values == {IPV4: None, IPV6: None}
    assert observed.modprobe == str(bin_dir / "modprobe")
    [change] = plan_for("version: 1\nnetwork: {icc: false}\n", observed)
    assert (change.resource, change.action, change.reversible) == (
        "module br_netfilter",
        "create",
        False,
    )
    BridgeNetfilter().apply(change, host)  # modprobe found as observe found it
    assert (tmp_path / "modprobe.args").read_text() == "br_netfilter\n"


@pytest.mark.parametrize(
    ("spec_text", "words"),
    [
        ("version: 1\nnetwork: {icc: false}\n", "cannot restrict inter-container communication"),
        (
            "version: 1\nnetwork: {userland_proxy: false}\n",
            "cannot restrict inter-container communication or run without the userland proxy",
        ),
    ],
)
def test_a_module_that_cannot_be_loaded_fails_in_dockers_words(
    tmp_path: Path, spec_text: str, words: str
) -> None:
    bin_dir = fake_modprobe(tmp_path, 1)
    observed = BridgeNetfilterObserved({IPV4: None, IPV6: None}, str(bin_dir / "modprobe"))
    [change] = plan_for(spec_text, observed)
    with pytest.raises(DockyardError) as e:
        BridgeNetfilter().apply(
            change, host_with(tmp_path, fake_proc(tmp_path, None), str(bin_dir))
        )
    assert str(e.value) == (
        f"{words}: please ensure that br_netfilter kernel module is loaded "
        "(modprobe br_netfilter: FATAL: Module br_netfilter not found.)"
    )


def test_an_undo_puts_the_setting_back(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path, {"bridge-nf-call-iptables": "0\n", "bridge-nf-call-ip6tables": "0\n"}
    )
    host = host_with(tmp_path, proc, "")
    [change] = plan_for(
        "version: 1\nnetwork: {icc: false}\n",
        BridgeNetfilter().observe(load_text("version: 1\n"), host),
    )
    BridgeNetfilter().apply(change, host)
    assert (proc / "sys/net/bridge/bridge-nf-call-iptables").read_text() == "1\n"
    undo = change.undo()
    assert undo is not None
    BridgeNetfilter().apply(undo, host)
    assert (proc / "sys/net/bridge/bridge-nf-call-iptables").read_text() == "0\n"


@pytest.mark.parametrize(
    ("observed", "down"),
    [
        (HairpinObserved(1, {}, set_by_dockyard=True), [("update", {"value": 1}, {"value": 0})]),
        (HairpinObserved(1, {}, set_by_dockyard=False), []),  # someone else's 1
        (HairpinObserved(0, {}, set_by_dockyard=True), []),
    ],
)
def test_down_takes_back_route_localnet_only_if_dockyard_set_it(
    observed: HairpinObserved, down: list[tuple[str, object, object]]
) -> None:
    seen = Seen()
    seen.add("hairpin", observed)
    changes, notes = Hairpin().teardown(load_text("version: 1\n"), seen)
    assert [(c.action, c.before, c.after) for c in changes] == down and notes == []
    assert all(c.name == "net.ipv4.conf.docker0.route_localnet" and c.claim for c in changes)
