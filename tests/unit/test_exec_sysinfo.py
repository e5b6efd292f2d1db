"""dockerinit installation and the system facts Docker warned about."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dockyard import engine
from dockyard.change import Plan
from dockyard.reconcilers.directories import Directories
from dockyard.reconcilers.exec_init import ExecInit
from dockyard.reconcilers.sysinfo import Sysinfo
from dockyard.spec import load_text
from dockyard.state.host import Host


def converge(tmp: Path, extra: str, apply: bool = True, **host: Path) -> Plan:
    spec = load_text(
        f"version: 1\nroot: {tmp}/docker\nstate_dir: {tmp}/state\npidfile: {tmp}/d.pid\n"
        "preflight: {require_root: false}\n" + extra
    )
    h = Host.for_spec(spec)
    for key, value in host.items():
        setattr(h, key, value)
    recs = engine.order([Directories(), ExecInit(), Sysinfo()])
    the_plan = engine.plan(recs, spec, engine.observe(recs, spec, h))
    if apply:
        engine.prepare_state_dir(h)
        outcome = engine.apply(the_plan, recs, spec, h)
        assert outcome.ok, outcome.error
    return the_plan


def test_dockerinit_is_installed_with_its_hash_and_mode(tmp_path: Path) -> None:
    source = tmp_path / "dockerinit"
    source.write_bytes(b"\x7fELF fake init " * 100)
    converge(tmp_path, f"exec: {{init_path: {source}, version: 1.2.0}}\n")
    target = tmp_path / "docker/init/dockerinit-1.2.0"
    assert target.read_bytes() == source.read_bytes()
    assert target.stat().st_mode & 0o777 == 0o700
    assert converge(tmp_path, f"exec: {{init_path: {source}}}\n", apply=False).changes == []


def test_a_different_dockerinit_is_replaced_and_a_mode_corrected(tmp_path: Path) -> None:
    source = tmp_path / "dockerinit"
    source.write_bytes(b"new init")
    spec = f"exec: {{init_path: {source}}}\n"
    converge(tmp_path, spec)
    target = tmp_path / "docker/init/dockerinit-1.2.0"
    target.write_bytes(b"old init")
    the_plan = converge(tmp_path, spec)
    assert [(c.action, c.reason) for c in the_plan.changes] == [
        ("replace", f"differs from {source}")
    ]
    assert (
        hashlib.sha256(target.read_bytes()).hexdigest() == hashlib.sha256(b"new init").hexdigest()
    )
    target.chmod(0o755)
    assert [c.reason for c in converge(tmp_path, spec).changes] == ["mode drifted"]
    assert target.stat().st_mode & 0o777 == 0o700


def test_a_missing_dockerinit_source_is_an_error(tmp_path: Path) -> None:
    the_plan = converge(tmp_path, f"exec: {{init_path: {tmp_path}/nope}}\n", apply=False)
    assert [n.message for n in the_plan.errors] == [
        f"exec.init_path {tmp_path}/nope: no such file or directory"
    ]


def fake_sys(tmp: Path, memory: bool, swap: bool) -> Path:
    sys_dir = tmp / "sys"
    mem = sys_dir / "fs/cgroup/memory"
    mem.mkdir(parents=True)
    if memory:
        (mem / "memory.limit_in_bytes").write_text("9223372036854771712\n")
        (mem / "memory.soft_limit_in_bytes").write_text("9223372036854771712\n")
    if swap:
        (mem / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    return sys_dir


def warnings(the_plan: Plan) -> list[str]:
    return [n.message for n in the_plan.notes if n.reconciler == "sysinfo"]


def test_docker_warnings_about_the_kernel(tmp_path: Path) -> None:
    no_swap = converge(tmp_path, "", apply=False, sys=fake_sys(tmp_path / "a", True, False))
    assert warnings(no_swap) == ["Your kernel does not support cgroup swap limit."]
    # The memory hierarchy mounted but without its limit files: Docker warned of both.
    none = converge(tmp_path, "", apply=False, sys=fake_sys(tmp_path / "b", False, False))
    assert warnings(none) == [
        "Your kernel does not support cgroup memory limit.",
        "Your kernel does not support cgroup swap limit.",
    ]
    swap_only = converge(tmp_path, "", apply=False, sys=fake_sys(tmp_path / "d", False, True))
    assert warnings(swap_only) == ["Your kernel does not support cgroup memory limit."]
    full = converge(tmp_path, "", apply=False, sys=fake_sys(tmp_path / "c", True, True))
    assert warnings(full) == []


def test_forwarding_off_is_a_warning_only_when_it_stays_off(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "sys/net/ipv4").mkdir(parents=True)
    (proc / "sys/net/ipv4/ip_forward").write_text("0\n")
    (proc / "cgroups").write_text(
        "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t4\t1\t1\n"
    )
    sys_dir = tmp_path / "empty-sys"
    sys_dir.mkdir()
    kept_off = converge(
        tmp_path, "network: {bridge: {name: none}}\n", apply=False, proc=proc, sys=sys_dir
    )
    assert warnings(kept_off) == [
        "IPv4 forwarding is disabled: containers cannot reach the network"
    ]
    for value in ("false", "disable"):  # left off, or turned off
        stays = converge(
            tmp_path, f"network: {{ip_forward: {value}}}\n", apply=False, proc=proc, sys=sys_dir
        )
        assert warnings(stays) == [
            "IPv4 forwarding is disabled: containers cannot reach the network"
        ]
    turned_on = converge(tmp_path, "", apply=False, proc=proc, sys=sys_dir)
    assert warnings(turned_on) == []
