"""`-m nfacct --nfacct-name NAME` prints its name with xtables_save_string (quoted, `"` and `\\`
escaped, when it holds anything but [A-Za-z0-9_-]), after two spaces:
`-m nfacct --nfacct-name  "a\\"b"`. That option is not in save.py's `_OPENERS`, so its string is
not skipped as one: a name (up to 31 bytes) that ends with ` -m comment --comment ` prints as
`--nfacct-name  " -m comment --comment "`, whose closing `"` follows an opener. save.py takes
it for the start of a comment and reads on to the next `"` in the save, over newlines,
COMMIT and table headers: the fix for `-m string` (the second review) left this option out.

- At the top of filter INPUT, the lines after it up to the next `"` (the tag of dockyard's
  first FORWARD rule) are one foreign rule: dockyard plans to add that rule again.
- At the end of nat POSTROUTING, every rule after it (DOCKER, DOCKYARD, DOCKYARD-HAIRPIN hold
  no `"`) and the next table's first lines are swallowed: dockyard writes its port rules again
  at every run (the copies it cannot see pile up).

The nfacct object is made over netlink (nfnetlink_acct, NFNL_MSG_ACCT_NEW); the match needs
xt_nfacct. Claim (1) of the README; no interface name or bare value is involved.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_iptables import BACKENDS, Firewall, mappings

pytestmark = [pytest.mark.root]

NAME = " -m comment --comment "

MAKE = r"""
import socket, struct, sys
name = sys.argv[1].encode() + b"\0"
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.bind((0, 0))
size = 4 + len(name)
attr = struct.pack("=HH", size, 1) + name + b"\0" * (-size % 4)  # NFACCT_NAME
payload = struct.pack("=BBH", 0, 0, 0) + attr
flags = 0x1 | 0x4 | 0x400 | 0x200  # REQUEST, ACK, CREATE, EXCL
s.send(struct.pack("=IHHII", 16 + len(payload), 7 << 8, flags, 1, 0) + payload)
reply = s.recv(4096)
sys.exit(-struct.unpack("=i", reply[16:20])[0])
"""


def with_nfacct(fw: Firewall, tmp_path: Path) -> None:
    script = tmp_path / "nfacct.py"
    script.write_text(MAKE)
    result = fw.box.run([sys.executable, str(script), NAME])
    if result.returncode != 0:
        pytest.skip(f"no nfacct here: {result.returncode} {result.stderr}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_foreign_nfacct_match_in_filter_makes_a_plan(
    box_factory: Any, tmp_path: Path, backend: str
) -> None:
    fw = Firewall(box_factory(), backend)
    fw.converge()
    with_nfacct(fw, tmp_path)
    fw.iptables("-I", "INPUT", "1", "-m", "nfacct", "--nfacct-name", NAME, "-j", "ACCEPT")
    code, out = fw.plan()
    assert (code, out) == (0, "No changes. The host matches the spec.\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dockyards_port_rules_after_such_a_rule_are_written_at_every_run(
    box_factory: Any, tmp_path: Path, backend: str
) -> None:
    fw = Firewall(box_factory(), backend)
    fw.spec({"published_ports": mappings(3, host=8080, container=80)})
    fw.converge()
    with_nfacct(fw, tmp_path)
    fw.iptables(
        "-t", "nat", "-A", "POSTROUTING", "-m", "nfacct", "--nfacct-name", NAME, "-j", "RETURN"
    )
    before = [r for r in fw.save("nat") if r.startswith("-A DOCKYARD ")]
    for _ in range(2):
        fw.converge()
    after = [r for r in fw.save("nat") if r.startswith("-A DOCKYARD ")]
    assert after == before
    code, out = fw.plan()
    assert (code, out) == (0, "No changes. The host matches the spec.\n")
