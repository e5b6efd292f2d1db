"""The bridge's subnet choice reads the host's nameservers with the DNS reconciler's parser, so
a nameserver line with a comment (Docker 1.x: `nameserver 1.2.3.4 # x` is 1.2.3.4) rules its
range out. Real kernel, in the test's own network namespace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.sandbox import Sandbox

pytestmark = pytest.mark.root


def test_a_commented_nameserver_keeps_docker0_off_its_range(box: Sandbox) -> None:
    resolv = Path(box.spec["dns"]["host_resolv_conf"])
    resolv.write_text("nameserver 172.17.0.53 # the office resolver\n#nameserver 10.0.0.2\n")
    result = box.reconcile("SPEC")
    assert result.returncode == 0, result.stdout + result.stderr
    shown = box.run(["ip", "-j", "addr", "show", "dev", "docker0"])
    info = json.loads(shown.stdout)[0]
    assert [f"{a['local']}/{a['prefixlen']}" for a in info["addr_info"]] == ["10.0.42.1/16"]
    written = Path(box.spec["root"]) / "resolv.conf"
    assert written.read_text().split("\n")[2:] == ["nameserver 172.17.0.53", ""]
