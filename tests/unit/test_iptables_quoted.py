"""A rule whose quoted string (a comment) holds a newline: iptables-save and `iptables -S`
print it as it is, over two or more lines, and the lines after the first can look like rules
of their own. Read as one rule, it is never taken for those, never named to `-D` (the tools
read a script at newlines), and never shown as lines of the plan."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.reconcilers.iptables import _commands, diff, rules, save
from dockyard.render import Style, change_lines

_NO_QUOTE = frozenset("_-" + string.digits + string.ascii_letters)


def printed(value: str) -> str:
    """A string as iptables prints it in a rule (xtables_save_string): bare when it holds only
    letters, digits, `_` and `-`; else quoted, with `"`, `\\` and `'` escaped by a backslash."""
    if value and _NO_QUOTE.issuperset(value):
        return value
    escaped = "".join("\\" + c if c in "\"\\'" else c for c in value)
    return f'"{escaped}"'


def commented(port: int, comment: str, interface: str = "") -> str:
    """A rule with a comment; with `interface`, on that input interface, printed bare as
    iptables prints one (it accepts `"`, `'`, `\\` and spaces in a name, with a warning)."""
    on = f"-i {interface} " if interface else ""
    return f"{on}-p tcp -m tcp --dport {port} -m comment --comment {printed(comment)} -j RETURN"


WANTED = "-d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"
# A comment that puts an exact copy of a wanted rule on a line of its own.
FORGED = f"x\n-A DOCKYARD {WANTED}\ny"


def _saved(chains: dict[str, list[str]]) -> str:
    heads = "".join(f":{chain} - [0:0]\n" for chain in chains)
    body = "".join(f"-A {chain} {rule}\n" for chain, lines in chains.items() for rule in lines)
    return f"*nat\n{heads}{body}COMMIT\n"


def test_a_forged_rule_inside_a_comment_is_not_read_as_a_rule() -> None:
    hand = commented(9, FORGED)
    text = _saved({"PREROUTING": [], "DOCKYARD": [hand]})
    assert list(save.parse(text)["nat"].rules["DOCKYARD"]) == [hand]
    assert save.listed(f"-N DOCKYARD\n-A DOCKYARD {hand}\n", "DOCKYARD") == [hand]


PIECES = ['"', "\\", "'", "\n", " ", "a", "-", "\n-A DOCKYARD -j RETURN", "\n-A PREROUTING "]
comments = st.lists(
    st.sampled_from([*PIECES, '\\"', "\n:X - [0:0]", "\nCOMMIT\n"]), max_size=12
).map(lambda pieces: "".join(pieces)[:200])


# Interface names up to 15 bytes, with what can pass for the start or end of a string.
interfaces = st.lists(
    st.sampled_from(['"', "'", "\\", " ", "a", "-", ' --comment "', " -j"]), max_size=4
).map(lambda pieces: "".join(pieces)[:15])


@given(
    st.lists(
        st.one_of(st.just(WANTED), st.builds(commented, st.just(7), comments, interfaces)),
        max_size=5,
    ),
    st.lists(st.builds(commented, st.just(8), comments, interfaces), max_size=3),
)
@settings(max_examples=300)
def test_every_reading_finds_the_rules_whatever_their_comments(
    own: list[str], builtin: list[str]
) -> None:
    """The table read as blocks (`parse`), its line-by-line fallback (`_lines`) and the watch's
    `iptables -S CHAIN` reading (`listed`) each find exactly the rules printed, however their
    comments mix quotes, backslashes, newlines and text that looks like rules or chains, and
    whatever quotes and spaces the interface names before them hold."""
    chains = {"PREROUTING": builtin, "DOCKYARD": own}
    text = _saved(chains)
    tables = save.parse(text)
    assert {c: list(r) for c, r in tables["nat"].rules.items()} == chains
    body = text.split("\n", 1)[1].rsplit("COMMIT\n", 1)[0]
    assert {c: list(r) for c, r in save._lines(body).rules.items()} == chains
    listing = "-N DOCKYARD\n" + "".join(f"-A DOCKYARD {rule}\n" for rule in own)
    assert save.listed(listing, "DOCKYARD") == own


def test_a_chain_without_such_a_rule_is_still_read_as_one_block() -> None:
    """The fast reading stays for every chain whose quoted strings close on their line: only
    a text that holds a quote is searched for one left open."""
    tagged = commented(5, "dockyard:0123456789abcdef")
    text = _saved({"PREROUTING": [tagged, commented(6, 'say "hi"\\')], "DOCKYARD": [WANTED]})
    tables = save.parse(text)
    assert isinstance(tables["nat"].rules["DOCKYARD"], save.Lines)
    assert isinstance(tables["nat"].rules["PREROUTING"], save.Lines)


@pytest.mark.parametrize("bulk", [False, True], ids=["few", "many"])
def test_a_rule_over_two_lines_in_our_chain_goes_with_a_flush(bulk: bool) -> None:
    """It cannot be named to `-D`: the chain, dockyard's alone, is flushed and written again,
    the wanted rules in the wanted order, and no command holds a newline."""
    want = [WANTED] + [f"-p tcp -m tcp --dport {n} -j RETURN" for n in range(60 if bulk else 2)]
    hand = commented(9, FORGED)
    current = save.parse(_saved({"DOCKYARD": [want[1], hand, *want[2:]]}))["nat"]
    changes = diff.install("nat", current.rules, _want(want))
    own = [c for c in changes if c.kind != "chain" and c.name.split(" ")[1] == "DOCKYARD"]
    assert [c.kind for c in own] == ["rules"]
    commands = _commands(own)
    assert commands[0] == "-F DOCKYARD"
    written = "\n".join(commands[1:]).split("\n")
    assert written == [f"-A DOCKYARD {line}" for line in want]


def _want(own: list[str]) -> rules.Wanted:
    chains = {("nat", "DOCKYARD"): own}
    return rules.Wanted(builtin={}, own=chains, indexed=rules.index_own(chains))


def test_a_rule_over_two_lines_is_never_dockyards() -> None:
    """Not even with a tag of dockyard's in it: dockyard writes no such rule."""
    tag = rules.tag_of("nat PREROUTING -j DOCKYARD")
    rule = f'-m comment --comment "{tag}" -m comment --comment "a\nb" -j DOCKYARD'
    assert save.owned_tag(rule.replace('"a\nb"', "a")) == tag
    assert save.owned_tag(rule) is None


def test_the_plan_shows_a_newline_in_a_rule_as_an_escape() -> None:
    """So that a comment cannot add lines of its own to the plan a user reads."""
    change = diff.rule_change("delete", "filter", "FORWARD", commented(9, FORGED), 1, "x")
    shown = change_lines(change, Style(colour=False))
    assert all("\n" not in line for line in shown)
    assert "\\n-A DOCKYARD " in shown[0]


def test_a_quote_in_an_interface_name_opens_no_string() -> None:
    """Interface names are printed bare: a `"` in one, even after text that reads as an
    option taking a string, is no string's start. The tables after it are read, and the
    chain after it is still read as one block."""
    rules = [
        '-m helper ! --helper "h\nx" -j ACCEPT',
        '-i a"b -j ACCEPT',
        '-i a --comment "z -j ACCEPT',
        '-o "x -m comment --comment "y\nz" -j ACCEPT',
    ]
    text = (
        _saved({"PREROUTING": rules, "DOCKYARD": [WANTED]}) + "*filter\n:FORWARD ACCEPT\nCOMMIT\n"
    )
    tables = save.parse(text)
    assert list(tables["nat"].rules["PREROUTING"]) == rules
    assert list(tables["nat"].rules["DOCKYARD"]) == [WANTED]
    assert "filter" in tables
    plain = _saved({"PREROUTING": rules[1:3], "DOCKYARD": [WANTED]})
    assert isinstance(save.parse(plain)["nat"].rules["DOCKYARD"], save.Lines)
