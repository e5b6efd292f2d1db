"""The verify pass after a commit takes what the commit leaves as told by the changes
(`diff.committed`) instead of reading every table again, only when the tables' token shows
that commit alone and has not moved since; and every rule dockyard writes reads back exactly
as told, which is what makes that telling true."""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from devtools.sandbox import Sandbox
from dockyard.reconcilers.iptables import _chains, _commands, diff, rules
from dockyard.spec import Spec
from tests.integration.test_iptables import (
    BACKENDS,
    Firewall,
    mappings,
    written_while_waiting,
)

pytestmark = pytest.mark.root

SAVE_WRAPPER = """import os, sys
with open({log!r}, "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""

# Runs the real restore; after the nat table's commit, once (the marker file is taken), another
# program appends a rule to dockyard's nat chain: a write between the commit and the verify.
RESTORE_WRAPPER = """import os, subprocess, sys
script = sys.stdin.buffer.read()
done = subprocess.run([{real!r}, *sys.argv[1:]], input=script)
if done.returncode == 0 and script.startswith(b"*nat"):
    try:
        os.rename({marker!r}, {marker!r} + ".taken")
    except FileNotFoundError:
        pass
    else:
        subprocess.run([{iptables!r}, "-t", "nat", "-A", "DOCKYARD", "-p", "tcp", "-m", "tcp",
                        "--dport", "9", "-j", "DNAT", "--to-destination", "172.17.0.9:9"],
                       check=True)
sys.exit(done.returncode)
"""


class Wrapped:
    """The backend's save and restore tools behind wrappers on PATH: each save is logged, and a
    restore can be followed by a foreign write."""

    def __init__(self, fw: Firewall) -> None:
        self.fw = fw
        self.bin = fw.box.base / "wrapped-bin"
        self.bin.mkdir()
        self.log = fw.box.base / "saves.log"
        self.marker = fw.box.base / "write-after-commit"
        for backend in ("legacy", "nft"):
            real = shutil.which(f"iptables-{backend}-save")
            if real is not None:
                self._tool(
                    f"iptables-{backend}-save", SAVE_WRAPPER.format(log=str(self.log), real=real)
                )
        b = fw.backend
        restore = RESTORE_WRAPPER.format(
            real=shutil.which(f"iptables-{b}-restore"),
            marker=str(self.marker),
            iptables=shutil.which(f"iptables-{b}"),
        )
        self._tool(f"iptables-{b}-restore", restore)

    def _tool(self, name: str, source: str) -> None:
        path = self.bin / name
        path.write_text(f"#!{sys.executable}\n{source}")
        path.chmod(0o755)

    def reconcile(self) -> tuple[int, str, int]:
        """A converge through the wrappers: its exit code, output, and how many saves it ran."""
        self.log.write_text("")
        env = {"PATH": f"{self.bin}:{os.environ['PATH']}"}
        result = self.fw.box.reconcile("SPEC", env=env)
        saves = len(self.log.read_text().splitlines())
        return result.returncode, result.stdout + result.stderr, saves


@pytest.fixture(params=BACKENDS)
def wrapped(request: pytest.FixtureRequest, box_factory: Any) -> Iterator[Wrapped]:
    fw = Firewall(box_factory(), request.param)
    fw.spec({"published_ports": mappings(5, host=8000, container=1000)})
    fw.converge()
    yield Wrapped(fw)


def _change_one_mapping(fw: Firewall, container_port: int) -> None:
    ports = mappings(5, host=8000, container=1000)
    ports[2] = {**ports[2], "container_port": container_port}
    fw.spec({"published_ports": ports})


def test_one_changed_mapping_is_verified_without_reading_the_tables_again(wrapped: Wrapped) -> None:
    fw = wrapped.fw
    code, out, noop_saves = wrapped.reconcile()
    assert code == 0, out
    _change_one_mapping(fw, 9999)
    code, out, changed_saves = wrapped.reconcile()
    assert code == 0, out
    assert changed_saves == noop_saves  # what the no-op read, and not a read more
    assert fw.plan()[0] == 0
    assert _dnat_of(fw, 8002) == ["172.17.0.2:9999"]
    # A rule of a built-in chain (here our jump, deleted by hand before the run) is told too.
    fw.iptables("-D", "FORWARD", *shlex.split(_our_forward_jump(fw)))
    code, out, builtin_saves = wrapped.reconcile()
    assert code == 0, out
    assert builtin_saves == noop_saves
    assert _our_forward_jump(fw)
    # Removing chains is read back: the count is not blind to the verify pass's reads.
    fw.spec({"iptables": False})
    code, out, removing_saves = wrapped.reconcile()
    assert code == 0, out
    assert removing_saves > noop_saves
    assert "DOCKYARD" not in fw.chains("nat")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_converge_from_scratch_is_verified_without_reading_the_tables_again(
    box_factory: Any, backend: str
) -> None:
    """It makes chains and writes built-in ones; the token proves it wrote alone, so what it
    leaves is told. The next run reads the kernel: nothing to do."""
    fw = Firewall(box_factory(), backend)
    fw.spec({"published_ports": mappings(5, host=8000, container=1000)})
    wrapped = Wrapped(fw)
    code, out, scratch_saves = wrapped.reconcile()
    assert code == 0, out
    assert "iptables:" in out
    code, out, noop_saves = wrapped.reconcile()
    assert code == 0, out
    assert scratch_saves == noop_saves
    assert fw.plan()[0] == 0
    assert _dnat_of(fw, 8002) == ["172.17.0.2:1002"]


def _dnat_of(fw: Firewall, port: int) -> list[str]:
    return [
        line.rsplit(" ", 1)[1]
        for line in fw.save("nat")
        if line.startswith("-A DOCKYARD ") and f" --dport {port} -j DNAT " in line
    ]


def _our_forward_jump(fw: Firewall) -> str:
    line = next(
        r for r in fw.save("filter") if r.startswith("-A FORWARD -o docker0") and "-j DOCKYARD" in r
    )
    return line.removeprefix("-A FORWARD ")


def test_a_write_between_the_commit_and_the_verify_pass_is_found(wrapped: Wrapped) -> None:
    """The tables' token moved after the commit: the verify pass reads them, finds the rule it
    did not write in its own chain, and undoes the run's changes."""
    fw = wrapped.fw
    wrapped.marker.touch()
    _change_one_mapping(fw, 9999)
    code, out, _ = wrapped.reconcile()
    assert not wrapped.marker.exists()  # the foreign write was made
    assert code == 1, out
    assert "did not converge" in out and "--dport 9 -j DNAT --to-destination 172.17.0.9:9" in out
    assert _dnat_of(fw, 8002) == ["172.17.0.2:1002"]  # undone
    fw.converge()  # the next run removes it, as any rule put by hand into dockyard's chain
    assert fw.plan()[0] == 0


def test_a_write_between_the_read_and_the_commit_is_found(wrapped: Wrapped) -> None:
    """Another program writes into dockyard's chain while the run waits for the xtables lock:
    the tables moved since the read, so the verify pass reads them and finds that rule."""
    fw = wrapped.fw
    ports = mappings(5, host=8000, container=1000)
    ports[2] = {**ports[2], "container_port": 9999}
    fw.spec({"published_ports": ports, "iptables_lock_timeout": 30})
    intruder = ["-t", "nat", "-A", "DOCKYARD", "-p", "udp", "-m", "udp", "--dport", "7"]
    dnat = ["-j", "DNAT", "--to-destination", "172.17.0.7:7"]
    proc = written_while_waiting(fw, [*intruder, *dnat])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "did not converge" in err and "--dport 7 -j DNAT --to-destination 172.17.0.7:7" in err
    assert _dnat_of(fw, 8002) == ["172.17.0.2:1002"]  # undone


# Every rule dockyard writes, rendered for any bridge and published port, reads back exactly
# as the changes tell it: the proof that telling what a commit leaves is the same as reading it.

BRIDGE_NAMES = st.text(
    st.characters(codec="ascii", exclude_characters=' \t\n\r\x0b\x0c/:+"\\', min_codepoint=33),
    min_size=1,
    max_size=15,
).filter(lambda name: name not in ("none", ".", "..") and name != "all")
PORTS = st.integers(1, 65535)
CONTAINERS = st.integers(2, 65534).map(lambda i: str(ipaddress.IPv4Address(0xAC110000 + i)))
HOSTS = st.one_of(
    st.just("0.0.0.0"), st.integers(1, 0xDFFFFFFF).map(lambda i: str(ipaddress.IPv4Address(i)))
)
PUBLISHED = st.fixed_dictionaries(
    {"host_port": PORTS, "container_ip": CONTAINERS, "container_port": PORTS},
    optional={"proto": st.sampled_from(["tcp", "udp", "TCP"]), "host_ip": HOSTS},
)
SUBNETS = st.sampled_from(["172.17.0.0/16", "10.200.0.0/24", "192.168.7.128/25"])


@pytest.fixture(params=BACKENDS, scope="module")
def bare(request: pytest.FixtureRequest) -> Iterator[tuple[Sandbox, str]]:
    from devtools.sandbox import sandbox

    with sandbox({"version": 1}, prefix="dkyrt") as box:
        yield box, request.param


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    bridge=BRIDGE_NAMES,
    ports=st.lists(PUBLISHED, min_size=1, max_size=40),
    proxy=st.booleans(),
    bind=HOSTS,
    icc=st.booleans(),
    masq=st.booleans(),
    subnet=SUBNETS,
)
def test_what_a_converge_from_scratch_writes_reads_back_as_told(
    bare: tuple[Sandbox, str],
    bridge: str,
    ports: list[dict[str, Any]],
    proxy: bool,
    bind: str,
    icc: bool,
    masq: bool,
    subnet: str,
) -> None:
    box, backend = bare
    network = {
        "bridge": {"name": bridge},
        "userland_proxy": proxy,
        "default_bind_ip": bind,
        "icc": icc,
        "ip_masq": masq,
        "published_ports": ports,
    }
    try:
        spec = Spec.model_validate({"version": 1, "network": network})
    except ValueError:
        assume(False)  # a bridge name the spec refuses
        raise
    want = rules.wanted(spec, ipaddress.IPv4Network(subnet))
    empty = _chains("")
    changes = [c for table in rules.TABLES for c in diff.install(table, empty[table], want)]
    told = diff.committed(empty, changes)
    assert told is not None
    script = []
    for table in rules.TABLES:  # without --noflush: each table emptied first, as from scratch
        script += [f"*{table}", *_commands([c for c in changes if c.name.startswith(table)])]
        script.append("COMMIT")
    restored = subprocess.run(
        ["ip", "netns", "exec", box.ns, f"iptables-{backend}-restore"],
        input="\n".join(script) + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, **box.env},
        check=False,
    )
    assert restored.returncode == 0, restored.stderr
    read = _chains(box.run([f"iptables-{backend}-save"], check=True).stdout)
    for table in rules.TABLES:
        chains = set(read[table]) | set(told[table])
        for chain in chains:  # a built-in chain nothing was written to may be left unsaid
            assert list(read[table].get(chain, [])) == list(told[table].get(chain, [])), chain
        assert set(told[table]) - set(read[table]) == set()
