"""Reading spec files: every way a file can be unusable gets one line and exit code 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from dockyard.cli import main
from dockyard.errors import SpecError
from dockyard.spec import Spec, load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_reference_spec_is_accepted_and_means_the_defaults() -> None:
    assert load(EXAMPLES / "docker-default.yaml") == Spec(version=1)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_valid(example: Path) -> None:
    load(example)


def unusable(path: Path) -> str:
    with pytest.raises(SpecError) as e:
        load(path)
    assert len(e.value.problems) == 1
    return e.value.problems[0]


def test_missing_file(tmp_path: Path) -> None:
    assert unusable(tmp_path / "nope.yaml") == f"{tmp_path}/nope.yaml: no such file"


def test_directory(tmp_path: Path) -> None:
    assert unusable(tmp_path) == f"{tmp_path}: is a directory, not a spec file"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("# nothing but a comment\n")
    assert unusable(tmp_path / "s.yaml") == (
        f"{tmp_path}/s.yaml: the file is empty; a spec needs at least `version: 1`"
    )


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_bytes(b"version: 1\nroot: /var/lib/\xff\n")
    assert unusable(tmp_path / "s.yaml") == (
        f"{tmp_path}/s.yaml: not UTF-8 text (byte 0xff at offset 26)"
    )


def test_malformed_yaml(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("version: 1\nnetwork:\n  icc: [true\n")
    assert unusable(tmp_path / "s.yaml") == (
        f"{tmp_path}/s.yaml:4:1: invalid YAML: while parsing a flow sequence "
        "did not find expected ',' or ']'"
    )


def test_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("- version: 1\n")
    assert unusable(tmp_path / "s.yaml") == (
        f"{tmp_path}/s.yaml:1:1: a spec is a mapping of keys such as `version: 1`"
    )


def test_several_documents(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("version: 1\n---\nversion: 1\n")
    assert unusable(tmp_path / "s.yaml") == (
        f"{tmp_path}/s.yaml:2:1: invalid YAML: expected a single document in the stream "
        "but found another document"
    )


def test_unreadable_file() -> None:
    """Root reads every file, so as root the check runs as nobody (setpriv)."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)
        spec = Path(tmp) / "s.yaml"
        spec.write_text("version: 1\n")
        spec.chmod(0)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        argv = [*(as_nobody if os.geteuid() == 0 else []), sys.executable, "-m", "dockyard"]
        result = subprocess.run([*argv, "validate", str(spec)], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (1, f"{spec}: permission denied\n")


@pytest.mark.parametrize(
    "content",
    [None, "", "\xff", "version: [\n", "version: 3\n", "version: 1\nbogus: 1\n"],
    ids=["missing", "empty", "non-utf8", "malformed", "bad-version", "unknown-key"],
)
@pytest.mark.parametrize("command", ["validate", "plan", "apply", "show"])
def test_bad_spec_exits_1_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, content: str | None
) -> None:
    path = tmp_path / "s.yaml"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    assert main([command, str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(str(path))
    assert "Traceback" not in err


def test_defaults_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["defaults"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert Spec.model_validate(printed) == Spec(version=1)


def test_schema_describes_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "dockyard spec"
    assert schema["required"] == ["version"]
    assert set(schema["properties"]) == set(Spec.model_fields)
    assert schema["additionalProperties"] is False
    bridge = schema["$defs"]["Bridge"]["properties"]
    assert bridge["name"]["pattern"] == r'^[^\s/:+"\\]{1,15}$'


def test_validate_says_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES / "docker-default.yaml")]) == 0
    assert capsys.readouterr().out.endswith("docker-default.yaml: valid\n")
