"""save._blocks finds each chain's block with `text.find("\\n-A NAME ", first - 1, end)`: from
the first rule of the table, every time. Chains are printed in the order of their headers, so
the search for each chain scans the blocks of all chains before it: reading a table of N
chains of one rule each scans O(N^2) characters. kube-proxy's iptables mode makes a chain per
service and per endpoint (KUBE-SVC-*, KUBE-SEP-*): a nat table of 20,000 such chains, as
iptables-{legacy,nft}-save print it, takes save.parse 3.8 s here, 40,000 take 17 s (a read of
100,000 rules in two chains is linear).

Counted, not timed: the characters `find` scans, for N and 2N chains (a linear read scans about
twice as many).
"""

from __future__ import annotations

from dockyard.reconcilers.iptables import save
from tests.attack.counting import Counting, saved


def scanned(n: int) -> int:
    text = Counting(saved(n))
    Counting.scanned = 0
    tables = save.parse(text)
    assert len(tables["nat"].chains) == n + 4
    assert next(iter(tables["nat"].rules[f"KUBE-SEP-{n - 1:08d}"])).startswith("-p tcp")
    return Counting.scanned


def test_reading_chains_is_linear_in_their_number() -> None:
    small, large = scanned(2000), scanned(4000)
    assert large <= 2.5 * small, (small, large)
