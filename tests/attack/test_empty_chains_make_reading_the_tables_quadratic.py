"""save._blocks searches each chain's first rule with `text.find("\\n-A NAME ", at, end)`,
`at` being where the last chain found begins. A chain with no rules is not found: its search
scans everything from there to the table's end. So a table of N empty chains listed before
(or among) N chains holding rules scans O(N^2) characters: the fix for many chains (each
searched from the last one found) holds only when every chain holds a rule.

Empty user chains are common: every chain made ahead of its rules, kube-proxy's chains for
services with no endpoints, Docker's DOCKER-ISOLATION-STAGE chains on a host with no
networks, chains kept to be jumped to later. Chains are printed in the order of their
headers (legacy: alphabetical), so empty ones named `A...` come before the rest.

Counted, not timed: the characters `find` scans, for N and 2N chains of each kind (a linear
read scans about twice as many).
"""

from __future__ import annotations

from dockyard.reconcilers.iptables import save
from tests.attack.counting import Counting, saved


def scanned(n: int) -> int:
    text = Counting(saved(n, empty=n))
    Counting.scanned = 0
    tables = save.parse(text)
    assert len(tables["nat"].chains) == 2 * n + 4
    assert list(tables["nat"].rules[f"EMPTY-{n - 1:08d}"]) == []
    assert next(iter(tables["nat"].rules[f"KUBE-SEP-{n - 1:08d}"])).startswith("-p tcp")
    return Counting.scanned


def test_reading_empty_chains_is_linear_in_their_number() -> None:
    small, large = scanned(2000), scanned(4000)
    assert large <= 2.5 * small, (small, large)
