"""`reconcile import daemon-json --from-flags "..."` splits dockerd's command line as a shell
would (shlex). A quote left open (`--bip "10.0.0.1/24`: a copy and paste cut short) made
shlex raise ValueError("No closing quotation"), which no one caught: the process-level guard
reported an internal error and wrote a crash report, for a typo on the command line."""

from __future__ import annotations

import pytest

from dockyard import daemon_json
from dockyard.cli import main
from dockyard.errors import DockyardError


def test_an_open_quote_is_a_clear_error() -> None:
    with pytest.raises(DockyardError) as e:
        daemon_json.parse_flags('--bip "10.0.0.1/24')
    assert str(e.value) == "--from-flags: no closing quotation, as a shell splits it"


def test_a_backslash_at_the_end_too() -> None:
    with pytest.raises(DockyardError) as e:
        daemon_json.parse_flags("--bridge br0 \\")
    assert str(e.value) == "--from-flags: no escaped character, as a shell splits it"


def test_the_command_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "daemon-json", "--from-flags", "--bridge 'br0"]) == 1
    assert capsys.readouterr().err == (
        "error: --from-flags: no closing quotation, as a shell splits it\n"
    )
