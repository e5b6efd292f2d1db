"""`network.bridge.name` goes, as text, into every rule dockyard writes (`-o NAME`, `-i NAME`,
fed to iptables-restore). The kernel takes any name of 1 to 15 bytes without '/', ':' or
whitespace, and so did the spec; but iptables gives three characters a meaning there:

- `+` at the end is iptables' wildcard: `br+` is a bridge the kernel creates, and `-o br+
  -j ACCEPT` accepts traffic to every interface whose name starts with `br` (another
  network's bridges included): the rule covers interfaces the spec never named.
- `"` opens a quoted word for iptables-restore: `-o br"x -j ACCEPT` is read as the interface
  `brx -j ACCEPT` with no target (iptables 1.8.9 only warns), so the rule written is not the
  rule wanted, and the run never converges.
- `\\` escapes the next character for iptables-restore, with the same effect.

Each is now refused when the spec is read, by name and with the reason.
"""

from __future__ import annotations

import pytest

from dockyard.errors import SpecError
from dockyard.spec import load_text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "br+",
            "spec.yaml:2:26: network.bridge.name: must not hold '+', which iptables reads as a "
            "wildcard in a rule's -i/-o, got 'br+'",
        ),
        (
            'br"x',
            "spec.yaml:2:26: network.bridge.name: must not hold '\"', which iptables-restore "
            "reads as a quote, got 'br\"x'",
        ),
        (
            "br\\x",
            "spec.yaml:2:26: network.bridge.name: must not hold '\\\\', which iptables-restore "
            "reads as an escape, got 'br\\\\x'",
        ),
    ],
)
def test_a_bridge_name_iptables_would_misread_is_refused(name: str, message: str) -> None:
    quoted = "'" + name + "'"
    with pytest.raises(SpecError) as e:
        load_text(f"version: 1\nnetwork: {{bridge: {{name: {quoted}}}}}\n", "spec.yaml")
    assert e.value.problems == [message]


def test_names_iptables_reads_literally_are_still_fine() -> None:
    for name in ("br-0", "br_0", "br.0", "dockerä", "!br", "br#0"):
        spec = load_text(f"version: 1\nnetwork: {{bridge: {{name: '{name}'}}}}\n")
        assert spec.network.bridge.name == name
