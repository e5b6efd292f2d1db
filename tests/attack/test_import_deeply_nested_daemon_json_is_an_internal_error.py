"""`reconcile import daemon-json FILE` read the file with json.loads and caught ValueError and
UnicodeDecodeError, not RecursionError: a daemon.json of 100,000 `[` (a few hundred KB) ended
in "internal error ... please report it" and a crash report, for a bad input file. It is
"not JSON", as any other file json cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.cli import main


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": ' * 50_000 + "1" + "}" * 50_000])
def test_a_deeply_nested_daemon_json_is_not_json(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(text)
    assert main(["import", "daemon-json", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: not JSON (nested too deeply")
    assert err.count("\n") == 1
