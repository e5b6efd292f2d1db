"""`-m string --string` prints its pattern quoted (libxt_string's print_string: `"` and `\\`
escaped), but save.py does not know that option: it takes a `"` for a quoted string's start
only after one of `_OPENERS`. A pattern that ends with one of them, ` -m comment --comment `,
prints as `-m string --string " -m comment --comment " --algo bm`: the pattern's closing `"`
follows an opener, so save.py takes it for the start of a comment, and reads on to the next
`"` in the save (or to its end), over newlines, COMMIT and table headers.

- At the top of filter INPUT, every line after it up to the next `"` (the tag of dockyard's
  first FORWARD rule) is one foreign rule: dockyard plans `+ rule filter FORWARD ... -j
  DOCKER-USER (missing)`, inserts a second copy, and the next run says "No changes" with two
  copies in the kernel, one of which it never sees. (With no `"` later in the save, every
  table after it would be gone from the read.)
- At the top of nat POSTROUTING, the MASQUERADE rule of dockyard's below it is swallowed:
  dockyard writes it again, and the copy it cannot see is never repaired.

Claim (1) of the README: every rule is read as exactly that rule whatever its strings hold.
No interface name is involved (the one limit the README admits).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_iptables import BACKENDS, Firewall

pytestmark = [pytest.mark.root]

PATTERN = " -m comment --comment "


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_foreign_string_match_in_filter_makes_a_plan(box_factory: Any, backend: str) -> None:
    fw = Firewall(box_factory(), backend)
    fw.converge()
    fw.iptables(
        "-I", "INPUT", "1", "-m", "string", "--algo", "bm", "--string", PATTERN, "-j", "ACCEPT"
    )
    code, out = fw.plan()
    assert (code, out) == (0, "No changes. The host matches the spec.\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dockyards_rules_below_such_a_rule_are_written_again(
    box_factory: Any, backend: str
) -> None:
    fw = Firewall(box_factory(), backend)
    fw.converge()
    before = fw.rules("nat", ours=True)
    fw.iptables(
        "-t",
        "nat",
        "-I",
        "POSTROUTING",
        "1",
        "-m",
        "string",
        "--algo",
        "bm",
        "--string",
        PATTERN,
        "-j",
        "ACCEPT",
    )
    fw.converge()
    assert fw.rules("nat", ours=True) == before  # no copies of dockyard's rules
