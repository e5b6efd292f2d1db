"""A real dockerd (Debian's docker.io, devtools/dockerd.py) beside dockyard in one sandbox, every
claim proven with real traffic: from a container to a server in a second namespace ("outside",
tests/integration/outside.py), from outside to a published port, between containers. The
servers answer with the address they saw the request come from, so NAT shows as it happened.

dockerd uses the nft backend of iptables here, so every spec pins it. Every wait is bounded."""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.dockerd import Dockerd, in_netns_http_get, private_dockerd
from devtools.sandbox import Sandbox
from tests.integration.outside import (
    ADDRESS,
    PEER_PATH,
    SANDBOX_ADDRESS,
    Outside,
    outside,
    peer_site,
)
from tests.integration.watching import Watcher, fights

pytestmark = pytest.mark.root

IMAGE = "busybox:latest"
DOCKER_PORT = 8080  # published by `docker run -p`
SPEC_PORT = 9090  # published by the spec's network.published_ports
EGRESS_PORT = 9000  # outside's server
TIMEOUT = 120.0  # seconds, for any one command

# GET with busybox nc (busybox-static's wget crashes in a container): the values are the
# script's arguments, never part of it.
GET = 'printf "GET %s HTTP/1.0\\r\\n\\r\\n" "$2" | nc -w 5 "$0" "$1"'


def spec(*published: tuple[int, str]) -> dict[str, Any]:
    """The spec: Docker 1.x's defaults, the nft backend, `published` (host port, container
    address) to port 80 of the container."""
    ports = [{"host_port": p, "container_ip": c, "container_port": 80} for p, c in published]
    return {"version": 1, "network": {"iptables_backend": "nft", "published_ports": ports}}


def ok(box: Sandbox, *argv: str) -> str:
    result = box.run(list(argv), timeout=TIMEOUT)
    assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
    return result.stdout


def reconcile(box: Sandbox, *args: str, expect: int = 0) -> str:
    result = box.reconcile(*args, timeout=TIMEOUT)
    assert result.returncode == expect, f"reconcile {args}: {result.stdout}{result.stderr}"
    return result.stdout


def docker(d: Dockerd, *args: str) -> str:
    result = d.docker(*args)
    assert result.returncode == 0, f"docker {args}: {result.stderr}\n{d.log_tail(15)}"
    return result.stdout


def peer_web(d: Dockerd, name: str, *run_args: str) -> str:
    """A busybox httpd container whose PEER_PATH answers with the client's address (IPv4 only,
    so the address is never v4-mapped); its address."""
    cgi_bin = peer_site(d.box.base / f"www-{name}")
    docker(
        d,
        *("run", "-d", "--name", name, "-v", f"{cgi_bin}:/www/cgi-bin:ro", *run_args),
        *(IMAGE, "httpd", "-f", "-p", "0.0.0.0:80", "-h", "/www"),
    )
    return d.container_ip(name)


def get_from_container(d: Dockerd, where: tuple[str, ...], host: str, port: int) -> str | None:
    """The body of GET http://host:port/PEER_PATH made from a container (`where` is
    ("run", "--rm", IMAGE) or ("exec", NAME)); None when nothing answered."""
    result = d.docker(*where, "sh", "-c", GET, host, str(port), PEER_PATH)
    if result.returncode != 0 and result.stdout == "":
        return None
    assert result.returncode == 0, f"GET {host}:{port} from {where}: {result.stderr}"
    head, _, body = result.stdout.partition("\n\n")  # CR LF read as LF
    assert head.startswith("HTTP/1.1 200"), result.stdout
    return body


def seen_from_outside(out: Outside, port: int) -> str:
    """The address a container published on the sandbox's `port` saw outside's request
    come from."""
    return out.http_get(SANDBOX_ADDRESS, port, PEER_PATH)


def daemon_rules(box: Sandbox) -> list[str]:
    """dockerd's part of the nat and filter tables, in order: its chains (DOCKER,
    DOCKER-ISOLATION-STAGE-*, DOCKER-USER) and every rule that dockyard did not write (dockyard
    tags those in built-in chains with a dockyard: comment, and owns its DOCKYARD and
    DOCKYARD-HAIRPIN chains)."""
    rules: list[str] = []
    for table in ("nat", "filter"):
        for line in ok(box, "iptables-nft-save", "-t", table).splitlines():
            if line.startswith(":DOCKER"):
                rules.append(f"{table} {line.rsplit(' ', 1)[0]}")  # no counters
            elif line.startswith("-A ") and not dockyards(line):
                rules.append(f"{table} {line}")
    return rules


def dockyards(rule: str) -> bool:
    return rule.split()[1] in ("DOCKYARD", "DOCKYARD-HAIRPIN") or "dockyard:" in rule


@contextlib.contextmanager
def beside_dockerd(box: Sandbox, *flags: str) -> Iterator[tuple[Outside, Dockerd]]:
    """A host converged by dockyard, outside's server listening, and dockerd on docker0 with
    `flags` and the busybox image."""
    box.write_spec(spec())
    reconcile(box, "SPEC")
    with (
        outside(box) as out,
        out.peer_server(EGRESS_PORT),
        private_dockerd(box, "--bridge", "docker0", *flags) as d,
    ):
        d.import_busybox()
        yield out, d


def no_fights(w: Watcher) -> None:
    """The watch corrected nothing and failed no pass (and has passed twice since the call)."""
    w.wait_passes(2)
    found = fights(w.drained())
    assert found == [], f"the watch fought the daemon: {found}"


def test_dockerd_without_iptables_on_dockyards_bridge(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    """dockerd --bridge docker0 --iptables=false: dockyard's NAT carries the containers'
    egress and its published port; the daemon's container churn is no drift."""
    with beside_dockerd(box, "--iptables=false") as (out, d):
        box.write_spec(spec((SPEC_PORT, peer_web(d, "web"))))
        reconcile(box, "SPEC")

        def traffic() -> None:
            # Outside sees the sandbox's address: dockyard's MASQUERADE (outside has no route
            # back to the containers' subnet).
            egress = ("run", "--rm", IMAGE)
            assert get_from_container(d, egress, ADDRESS, EGRESS_PORT) == f"{SANDBOX_ADDRESS}\n"
            # dockyard's DNAT, the only one: the container sees outside's address.
            assert seen_from_outside(out, SPEC_PORT) == f"{ADDRESS}\n"

        traffic()
        w = watcher(count_passes=True)
        w.ready()
        for _ in range(3):
            docker(d, "run", "--rm", IMAGE, "true")
        for i in range(2):
            docker(d, "run", "-d", "--name", f"churn{i}", IMAGE, "sleep", "60")
            docker(d, "rm", "-f", f"churn{i}")
        traffic()
        no_fights(w)
        # dockerd wrote no rule: the chains it would use are there, empty, as dockyard made them.
        assert [r for r in daemon_rules(box) if " -A " in r] == []
        assert w.stop() == 0


def test_dockerd_with_iptables_beside_dockyards_firewall(
    box: Sandbox, watcher: Callable[..., Watcher]
) -> None:
    """dockerd --bridge docker0 --iptables=true with dockyard's firewall on: dockerd's rules
    stay as dockerd wrote them through an apply that has work to do and through a watch, its
    published port keeps the client's address, its isolation of user networks holds, and its
    restart is no drift."""
    box.write_spec(spec())
    reconcile(box, "SPEC")
    with (
        outside(box) as out,
        private_dockerd(box, "--bridge", "docker0", "--iptables=true") as d,
    ):
        d.import_busybox()
        pub = peer_web(d, "pub", "-p", f"{DOCKER_PORT}:80")
        docker(
            d,
            *("network", "create", "--subnet", "192.168.213.0/24"),
            *("-o", "com.docker.network.bridge.name=dkyiso0", "isolated"),
        )
        isolated = peer_web(d, "target", "--network", "isolated")
        docker(d, "run", "-d", "--name", "client", IMAGE, "sleep", "600")

        before = daemon_rules(box)
        for needed in (f"--dport {DOCKER_PORT} -j DNAT", "-j DOCKER-ISOLATION-STAGE-2", "dkyiso0"):
            assert any(needed in r for r in before), f"no {needed!r} in {before}"
        # Work for the apply: a port of dockyard's own to publish, and its ACCEPT of the
        # containers' outgoing traffic (which must go below dockerd's isolation jump) to put back.
        box.write_spec(spec((SPEC_PORT, pub)))
        outgoing = next(
            line
            for line in ok(box, "iptables-nft-save", "-t", "filter").splitlines()
            if "dockyard:" in line and "-i docker0 ! -o docker0" in line
        )
        ok(box, "iptables-nft", "-D", *shlex.split(outgoing)[1:])
        applied = reconcile(box, "SPEC")
        assert outgoing.removeprefix("-A ") in applied and "DOCKYARD" in applied
        assert daemon_rules(box) == before

        w = watcher(count_passes=True)
        w.ready()
        w.wait_passes(2)
        assert daemon_rules(box) == before

        # dockerd's DNAT, not its userland proxy (the container would see the bridge's
        # address), and dockyard's: the container sees outside's address through both.
        assert seen_from_outside(out, DOCKER_PORT) == f"{ADDRESS}\n"
        assert seen_from_outside(out, SPEC_PORT) == f"{ADDRESS}\n"

        # The isolated network's container answers the sandbox, a container on docker0 reaches
        # another there, but not the isolated one.
        assert in_netns_http_get(box, isolated, 80, PEER_PATH) == f"{source(box, isolated)}\n"
        client = ("exec", "client")
        assert get_from_container(d, client, pub, 80) == f"{d.container_ip('client')}\n"
        docker(d, *client, "ping", "-c", "1", "-W", "3", pub)
        assert get_from_container(d, client, isolated, 80) is None
        assert d.docker(*client, "ping", "-c", "1", "-W", "3", isolated).returncode != 0
        no_fights(w)
        assert daemon_rules(box) == before

        # A restart puts dockerd's rules on top again: no drift, no corrective change.
        d.restart()
        no_fights(w)
        restarted = daemon_rules(box)
        no_fights(w)
        assert daemon_rules(box) == restarted
        docker(d, "start", "pub")
        assert seen_from_outside(out, DOCKER_PORT) == f"{ADDRESS}\n"
        no_fights(w)
        assert w.stop() == 0


def source(box: Sandbox, toward: str) -> str:
    """The sandbox's source address toward `toward`."""
    route = ok(box, "ip", "-o", "route", "get", toward).split()
    return route[route.index("src") + 1]


def test_shared_data_root_settles(box: Sandbox) -> None:
    """dockerd on the spec's own root: after at most one apply, plan is clean; and it stays
    clean after dockerd restarts and runs containers again."""
    box.write_spec(spec())
    reconcile(box, "SPEC")
    with private_dockerd(box, "--bridge", "docker0", "--iptables=false") as d:
        assert d.paths.data_root == Path(box.spec["root"])
        d.import_busybox()
        docker(d, "run", "-d", "--name", "running", IMAGE, "sleep", "600")
        docker(d, "run", "--name", "exited", IMAGE, "true")

        plan = box.reconcile("plan", "SPEC", "--detailed-exitcode", timeout=TIMEOUT)
        assert plan.returncode in (0, 2), plan.stdout + plan.stderr
        if plan.returncode == 2:
            reconcile(box, "SPEC")
        reconcile(box, "plan", "SPEC", "--detailed-exitcode")

        d.restart()
        assert docker(d, "run", "--rm", IMAGE, "echo", "hi") == "hi\n"
        docker(d, "start", "exited")
        docker(d, "run", "-d", "--name", "again", IMAGE, "sleep", "600")
        reconcile(box, "plan", "SPEC", "--detailed-exitcode")


def test_down_refuses_while_a_container_runs_on_the_bridge(box: Sandbox) -> None:
    """`down` would take docker0 from under a running container: refused, naming the port;
    the container keeps its network; `--force` is the way to do it anyway."""
    with beside_dockerd(box, "--iptables=false") as (_, d):
        docker(d, "run", "-d", "--name", "app", IMAGE, "sleep", "600")
        refused = box.reconcile("down", "SPEC", timeout=TIMEOUT)
        assert refused.returncode == 1
        assert "docker0 stays: 1 port(s) attached (veth" in refused.stderr
        assert "containers use it; stop them first, or reconcile down --force" in refused.stderr
        app = ("exec", "app")
        assert get_from_container(d, app, ADDRESS, EGRESS_PORT) == f"{SANDBOX_ADDRESS}\n"
        docker(d, "rm", "-f", "app")
        # With no container, the live daemon holding the pid file still keeps the bridge.
        refused = box.reconcile("down", "SPEC", timeout=TIMEOUT)
        assert refused.returncode == 1
        assert f"a live daemon (pid {d.pid}, dockerd) holds {d.paths.pidfile}" in refused.stderr
    reconcile(box, "down", "SPEC")
    assert box.run(["ip", "link", "show", "docker0"]).returncode != 0


def test_exported_daemon_json_gives_containers_dockyards_mtu_and_dns(box: Sandbox) -> None:
    """`mtu: auto` follows the default route (1450 here) and the nameservers come from the
    host's resolv.conf; dockerd ignores both unless fed `reconcile export daemon-json`."""
    with outside(box):
        ok(box, "ip", "link", "set", "dkyout0", "mtu", "1450")
        ok(box, "ip", "route", "add", "default", "via", ADDRESS)
        box.write_spec(spec())
        reconcile(box, "SPEC")
        assert ok(box, "cat", "/sys/class/net/docker0/mtu") == "1450\n"
        exported = json.loads(reconcile(box, "export", "daemon-json", "SPEC"))
        assert exported["mtu"] == 1450 and exported["dns"] == ["192.0.2.53"]
        assert exported["bridge"] == "docker0" and exported["data-root"] == box.spec["root"]
        config = box.path("etc/docker/daemon.json")
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(exported))
        with private_dockerd(box) as d:
            d.import_busybox()
            mtu = docker(d, "run", "--rm", IMAGE, "cat", "/sys/class/net/eth0/mtu")
            resolv = docker(d, "run", "--rm", IMAGE, "cat", "/etc/resolv.conf")
            assert mtu == "1450\n"
            assert [x for x in resolv.splitlines() if x.startswith("nameserver")] == [
                "nameserver 192.0.2.53"
            ]
            # The spec dockerd's own flags amount to, read back: the same bridge and MTU.
            back = reconcile(box, "import", "daemon-json", str(config))
            assert "bridge:\n    name: docker0\n    mtu: 1450" in back


def test_exported_ipv6_gives_containers_ipv6_and_the_hosts_search_domains(box: Sandbox) -> None:
    """With `network.ipv6: true` and only an IPv6 nameserver on the host, the export carries
    `ipv6: true` beside it: dockerd (given the `fixed-cidr-v6` it requires since 20.10, which
    dockyard does not manage) runs containers with IPv6 on eth0 and writes the same nameserver
    and the host's search domain as dockyard's own resolv.conf."""
    box.path("etc/resolv.conf").write_text("nameserver 2001:db8::53\nsearch example.test\n")
    box.write_spec({**spec(), "network": {"iptables_backend": "nft", "ipv6": True}})
    reconcile(box, "SPEC")
    mine = Path(box.spec["root"], "resolv.conf").read_text()
    assert "nameserver 2001:db8::53\nsearch example.test\n" in mine
    exported = json.loads(reconcile(box, "export", "daemon-json", "SPEC"))
    assert exported["ipv6"] is True and exported["dns"] == ["2001:db8::53"]
    config = box.path("etc/docker/daemon.json")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({**exported, "fixed-cidr-v6": "2001:db8:1::/64"}))
    with private_dockerd(box) as d:
        d.import_busybox()
        script = "cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6; cat /etc/resolv.conf"
        out = docker(d, "run", "--rm", IMAGE, "sh", "-c", script).splitlines()
        assert out[0] == "0"
        assert {x for x in out[1:] if x.startswith(("nameserver", "search"))} == {
            "nameserver 2001:db8::53",
            "search example.test",
        }
        back = box.reconcile("import", "daemon-json", str(config), timeout=TIMEOUT)
        assert back.returncode == 0 and "\n  ipv6: true\n" in back.stdout
        assert "fixed-cidr-v6: not managed by dockyard" in back.stderr
