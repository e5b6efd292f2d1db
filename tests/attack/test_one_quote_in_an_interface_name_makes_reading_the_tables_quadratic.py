"""save.parse takes a `"` that is not closed on its line for a comment going on over lines
(edb92ca), and `_logical` then joins the next line to it and searches the whole joined text
again for the closing quote, line after line. iptables-save prints an interface name as it
is, and one may hold `"`: a single foreign rule `-A PREROUTING -i a"b -j ACCEPT` above
dockyard's chain makes reading the tables quadratic in the rules after it.

Measured here: 100,000 rules of DOCKYARD after it, 18 s instead of 0.015 s; the 300,000 rules
of 100,000 published ports, 72 s instead of 0.035 s, at every run and every watch pass that
reads the tables (besides the wrong plan: see
test_a_foreign_interface_name_with_a_quote_hides_the_rest_of_the_tables.py).
"""

from __future__ import annotations

import pytest

from dockyard.reconcilers.iptables import save


def _text(n: int, first: str) -> str:
    rules = "\n".join(
        f"-A DOCKYARD ! -i docker0 -p tcp -m tcp --dport {i % 60000 + 1} -j DNAT "
        f"--to-destination 172.17.{i // 250 % 250}.{i % 250 + 2}:{i % 60000 + 1}"
        for i in range(n)
    )
    return f"*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKYARD - [0:0]\n{first}{rules}\nCOMMIT\n"


def test_one_foreign_quote_does_not_make_parse_quadratic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not timed: the bare quote opens no string, so no string's end is searched
    for, and the chain after it is read as one block, as without the quote."""
    searched: list[int] = []
    real = save._string_end

    def counted(text: str, at: int) -> int:
        searched.append(at)
        return real(text, at)

    monkeypatch.setattr(save, "_string_end", counted)
    quoted = _text(50_000, '-A PREROUTING -i a"b -j ACCEPT\n')
    tables = save.parse(quoted)
    assert searched == []
    assert isinstance(tables["nat"].rules["DOCKYARD"], save.Lines)
    assert len(tables["nat"].rules["DOCKYARD"]) == 50_000
    assert list(tables["nat"].rules["PREROUTING"]) == ['-i a"b -j ACCEPT']
