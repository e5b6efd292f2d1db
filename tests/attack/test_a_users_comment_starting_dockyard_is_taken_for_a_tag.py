"""dockyard recognises its rules in built-in chains by a comment `dockyard:<16 hex digits>`
(the hash of the rule), and treats every other rule as foreign: "No rule dockyard did not write is
ever deleted, anywhere". But any comment that merely starts with `dockyard:` was taken for a tag:
an administrator's `-A FORWARD -p tcp --dport 22 -m comment --comment "dockyard: keep ssh" -j
ACCEPT` (a note about dockyard, written by hand) was read as a rule of dockyard's "changed by
hand" and deleted by apply, by the watch, by `iptables: false` and by `down`."""

from __future__ import annotations

import ipaddress

from dockyard.reconcilers.iptables import choose_backend, diff
from dockyard.reconcilers.iptables.rules import wanted
from dockyard.reconcilers.iptables.save import owned_tag
from dockyard.spec import load_text

USERS = [
    '-p tcp -m tcp --dport 22 -m comment --comment "dockyard: keep ssh" -j ACCEPT',
    '-p tcp -m tcp --dport 23 -m comment --comment "dockyard:ssh" -j ACCEPT',
    '-m comment --comment "dockyard:0123456789abcdef0" -j ACCEPT',  # one digit too many
]


def test_only_dockyards_own_tag_is_a_tag() -> None:
    assert [owned_tag(line) for line in USERS] == [None, None, None]
    ours = '-m comment --comment "dockyard:0123456789abcdef" -j ACCEPT'
    assert owned_tag(ours) == "dockyard:0123456789abcdef"


def test_a_users_rule_noting_dockyard_stays_through_apply_and_down() -> None:
    spec = load_text("version: 1\n")
    want = wanted(spec, ipaddress.IPv4Network("172.17.0.0/16"))
    chains = {"FORWARD": list(USERS)}
    installed = diff.install("filter", chains, want)
    removed = diff.remove("filter", chains)
    for change in [*installed, *removed]:
        assert change.action != "delete", change


def test_backend_auto_is_not_drawn_to_a_users_comment() -> None:
    """With both backends in use, `auto` takes the one holding dockyard's rules: a user's rule
    noting dockyard in the other must not make dockyard write a second firewall there."""
    spec = load_text("version: 1\n")
    texts = {
        "legacy": f"*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD {USERS[0]}\nCOMMIT\n",
        "nft": "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD "
        '-m comment --comment "dockyard:b868d8e98b2608b7" -j DOCKER-USER\nCOMMIT\n',
    }
    assert choose_backend(spec, texts, "legacy") == ("nft", "it holds dockyard's rules")
