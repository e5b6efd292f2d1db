"""An interface name may hold `"` (the kernel refuses only '/', ':' and whitespace; iptables
takes it in `-i`/`-o`), and iptables-save prints it as it is, unquoted: `-A FORWARD -i a"b -j
ACCEPT`. Since edb92ca, save.parse reads quoted strings "as the tools quote them" and takes a
`"` that is not closed on its line for a comment that goes on over lines: such a foreign rule
swallows every line after it, COMMIT and the next tables included.

- In filter (printed before nat by iptables-nft-save), the whole nat table disappears from the
  read: dockyard plans `+ chain nat DOCKYARD (missing)` and every run fails at its commit
  (`Chain already exists`), nothing changed. No later run converges while the foreign rule is
  there, and no change of the spec can be applied.
- At the top of nat POSTROUTING, dockyard's POSTROUTING rules below it are not seen: it inserts
  them again (duplicates, 'verified'), and the copies it cannot see are never repaired, moved
  or removed.

The README promises that every other rule is foreign and left alone, and that duplicates are
repaired; a foreign rule must not change what dockyard sees of the rest of the tables.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_iptables import BACKENDS, Firewall

pytestmark = [pytest.mark.root]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_foreign_rule_on_an_interface_named_with_a_quote_blocks_every_run(
    box_factory: Any, backend: str
) -> None:
    fw = Firewall(box_factory(), backend)
    fw.converge()
    fw.iptables("-I", "FORWARD", "1", "-i", 'a"b', "-j", "ACCEPT")
    code, out = fw.plan()
    assert (code, out) == (0, "No changes. The host matches the spec.\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dockyards_rules_below_such_a_rule_are_written_again_and_never_repaired(
    box_factory: Any, backend: str
) -> None:
    fw = Firewall(box_factory(), backend)
    fw.converge()
    before = fw.rules("nat", ours=True)
    fw.iptables("-t", "nat", "-I", "POSTROUTING", "1", "-o", 'x"y', "-j", "ACCEPT")
    fw.converge()
    assert fw.rules("nat", ours=True) == before  # no copies of dockyard's rules
