"""README (Ownership is by chain): "A comment may hold newlines too ... Quoted strings are read
as the tools quote them, so such a rule is read as one rule over several lines: it never
passes for the rules its lines look like."

iptables-save does not quote an interface name, and one may hold `"`. A rule with `-i a"b`
and a comment holding newlines pairs the interface's `"` with the comment's opening one, so
save.parse takes the comment's first line for the end of the rule and its next line, here
word for word dockyard's ACCEPT for a published port, for a rule of the DOCKYARD chain. The
comment ends with `\\"` and its closing quote, which leaves that last line balanced too.

The real ACCEPT, deleted by hand, is then never put back: the plan says "No changes" while
the kernel has no such rule (`iptables -C` fails), on both backends, run after run.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_iptables import BACKENDS, Firewall, mappings

pytestmark = [pytest.mark.root]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_accept_is_taken_for_present(box_factory: Any, backend: str) -> None:
    fw = Firewall(box_factory(), backend)
    fw.spec({"published_ports": mappings(2, host=8080, container=80)})
    fw.converge()
    rule = next(r for r in fw.save("filter") if r.startswith("-A DOCKYARD ") and "--dport 80 " in r)
    comment = "x\n" + rule + '\n"'
    fw.iptables("-A", "FORWARD", "-i", 'a"b', "-m", "comment", "--comment", comment, "-j", "ACCEPT")
    fw.iptables("-D", *rule[3:].split())  # the real one goes
    check = fw.box.run([f"iptables-{backend}", "-w", "-C", *rule[3:].split()])
    assert check.returncode != 0  # the kernel has no such rule
    code, out = fw.plan()
    assert code == 2 and "--dport 80 " in out and "(missing)" in out, out
