"""Work counted, not timed: the characters a text's `find` scans while it is read."""

from __future__ import annotations


class Counting(str):
    scanned = 0

    def find(self, sub: str, start: int | None = 0, end: int | None = None) -> int:  # type: ignore[override]
        found = str.find(self, sub, start, end)
        start = start or 0
        stop = len(self) if end is None else end
        Counting.scanned += (found if found >= 0 else stop) - start
        return found


def saved(n: int, empty: int = 0) -> str:
    """A nat table of `empty` chains with no rules, then `n` chains of one rule each."""
    head = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
    ]
    head += [f":EMPTY-{i:08d} - [0:0]" for i in range(empty)]
    head += [f":KUBE-SEP-{i:08d} - [0:0]" for i in range(n)]
    rules = [
        f"-A KUBE-SEP-{i:08d} -p tcp -m tcp -j DNAT "
        f"--to-destination 10.0.{i // 256 % 256}.{i % 256}:80"
        for i in range(n)
    ]
    return "\n".join([*head, *rules, "COMMIT", ""])
