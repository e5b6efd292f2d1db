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


class Counting(str):
    scanned = 0

    def find(self, sub: str, start: int | None = 0, end: int | None = None) -> int:  # type: ignore[override]
        found = str.find(self, sub, start, end)
        start = start or 0
        stop = len(self) if end is None else end
        Counting.scanned += (found if found >= 0 else stop) - start
        return found


def saved(n: int) -> str:
    head = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
    ]
    head += [f":KUBE-SEP-{i:08d} - [0:0]" for i in range(n)]
    rules = [
        f"-A KUBE-SEP-{i:08d} -p tcp -m tcp -j DNAT "
        f"--to-destination 10.0.{i // 256 % 256}.{i % 256}:80"
        for i in range(n)
    ]
    return "\n".join([*head, *rules, "COMMIT", ""])


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
