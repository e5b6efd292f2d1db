"""The `reconcile` command: exit codes, output streams, rendering, start-up cost."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import cli
from dockyard.change import Change, Note, Plan
from dockyard.cli import main
from dockyard.render import Style, plan_json, plan_text


def test_help_imports_nothing_heavy() -> None:
    """`--help` must answer at once: no pydantic, YAML, netlink or xtables at start-up."""
    code = (
        "import sys\nfrom dockyard.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'pydantic', 'yaml', 'pyroute2', 'iptc', 'tenacity'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_spec_alone_means_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "absent.yaml"), "--dry-run"]) == 1
    assert capsys.readouterr().err == f"{tmp_path}/absent.yaml: no such file\n"


def test_usage_errors_exit_1_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["plan"])
    assert e.value.code == 1
    assert "the following arguments are required: SPEC" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("dockyard ")


def sample_plan() -> Plan:
    return Plan(
        changes=[
            Change("directories", "directory", "/d", "create", None, {"mode": "0700"}, "missing"),
            Change(
                "directories",
                "directory",
                "/e",
                "update",
                {"mode": "0755", "owner": "0:0"},
                {"mode": "0700", "owner": "0:0"},
                "mode drifted",
            ),
            Change("pidfile", "pidfile", "/p", "delete", {"pid": 9}, None, "stale"),
            Change("pidfile", "pidfile", "/q", "replace", {"pid": 9}, {"pid": 10}, "stale"),
        ],
        notes=[Note("preflight", "error", "too old")],
    )


def test_plan_text_is_terraform_like() -> None:
    text = plan_text(sample_plan(), ["preflight", "directories", "pidfile"], Style(colour=False))
    assert text == (
        "preflight\n"
        "  Error: too old\n"
        "\n"
        "directories\n"
        "  + directory /d  (missing)\n"
        "      mode: 0700\n"
        "  ~ directory /e  (mode drifted)\n"
        "      mode: 0755 -> 0700\n"
        "\n"
        "pidfile\n"
        "  - pidfile /p  (stale)\n"
        "      pid: 9\n"
        "  -/+ pidfile /q  (stale)\n"
        "      pid: 9 -> 10\n"
        "\n"
        "Plan: 2 to create, 1 to update, 2 to delete.\n"
    )


def test_colour_only_when_asked() -> None:
    plain = plan_text(sample_plan(), ["directories"], Style(colour=False))
    coloured = plan_text(sample_plan(), ["directories"], Style(colour=True))
    assert "\033[" not in plain
    assert "\033[32m+\033[0m directory /d" in coloured


def test_no_color_env_wins_on_a_tty(tmp_path: Path) -> None:
    """Through a real pseudo-terminal: colour by default there, none with NO_COLOR."""
    import os
    import pty

    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"version: 1\nroot: {tmp_path}/r\nstate_dir: {tmp_path}/s\n"
        "preflight: {require_root: false}\nnetwork: {bridge: {name: none}}\n"
    )

    def run_on_tty(env: dict[str, str]) -> bytes:
        pid, fd = pty.fork()
        if pid == 0:  # child
            os.execve(sys.executable, [sys.executable, "-m", "dockyard", "plan", str(spec)], env)
        out = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.waitpid(pid, 0)
        return out

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert b"\033[" in run_on_tty(env)
    assert b"\033[" not in run_on_tty({**env, "NO_COLOR": "1"})


def test_json_plan_is_versioned_and_complete() -> None:
    doc = plan_json(sample_plan(), "plan", pending=True)
    assert doc["format_version"] == 1
    assert doc["summary"] == {"create": 2, "update": 1, "delete": 2}
    assert doc["changes"][1] == {
        "reconciler": "directories",
        "resource": "directory /e",
        "action": "update",
        "before": {"mode": "0755", "owner": "0:0"},
        "after": {"mode": "0700", "owner": "0:0"},
        "reason": "mode drifted",
    }
    assert doc["notes"] == [{"reconciler": "preflight", "severity": "error", "message": "too old"}]
    json.dumps(doc)


def test_show_json_without_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(f"version: 1\nroot: {tmp_path}/r\nstate_dir: {tmp_path}/s\n")
    assert main(["show", str(spec), "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format_version"] == 1
    assert doc["observed"]["directories"]["root"] == f"{tmp_path}/r"
    assert doc["observed"]["preflight"]["os"] == "linux"


def test_a_long_plan_is_summarised_in_text_but_complete_in_json() -> None:
    changes = [
        Change("iptables", "rule", f"nat DOCKER r{i}", "create", None, {"position": "end"}, "x")
        for i in range(1000)
    ]
    the_plan = Plan(changes=changes)
    text = plan_text(the_plan, ["iptables"], Style(colour=False))
    assert text.count("+ rule nat DOCKER") == 20
    assert "  ... and 980 more changes of iptables (-o json lists every one)\n" in text
    assert text.endswith("Plan: 1000 to create, 0 to update, 0 to delete.\n")
    assert len(plan_json(the_plan, "plan")["changes"]) == 1000


def test_a_bulk_rewrite_shows_what_it_adds_and_removes() -> None:
    old = [f"--dport {p} -j ACCEPT" for p in range(100)]
    new = old[2:] + [f"--dport {p} -j ACCEPT" for p in range(500, 505)]
    change = Change(
        "iptables",
        "rules",
        "filter DOCKER",
        "update",
        {"count": len(old), "lines": old},
        {"count": len(new), "lines": new},
        "5 missing, 2 not in the spec",
    )
    text = plan_text(Plan(changes=[change]), ["iptables"], Style(colour=False))
    assert text.splitlines()[1:10] == [
        "  ~ rules filter DOCKER  (5 missing, 2 not in the spec)",
        "      count: 100 -> 103",
        "      lines:",
        "        + --dport 500 -j ACCEPT",
        "        + --dport 501 -j ACCEPT",
        "        + --dport 502 -j ACCEPT",
        "        + ... 2 more",
        "        - --dport 0 -j ACCEPT",
        "        - --dport 1 -j ACCEPT",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["watch", "--interval", "0"], "a number of seconds from 1 to 86400, not '0'"),
        (["watch", "--interval", "soon"], "a number of seconds from 1 to 86400, not 'soon'"),
        (["watch", "--interval", "inf"], "a number of seconds from 1 to 86400, not 'inf'"),
        (["watch", "--interval", "nan"], "a number of seconds from 1 to 86400, not 'nan'"),
        (["apply", "--interval", "1e400"], "a number of seconds from 1 to 86400, not '1e400'"),
        (["apply", "--lock-timeout", "nan"], "a number of seconds from 0 to 86400, not 'nan'"),
        (["apply", "--lock-timeout", "1e999"], "a number of seconds from 0 to 86400, not '1e999'"),
        (["apply", "--lock-timeout", "-1"], "a number of seconds from 0 to 86400, not '-1'"),
        (["down", "--lock-timeout", "86401"], "a number of seconds from 0 to 86400, not '86401'"),
        (["watch", "--full-every", "0"], "a whole number from 1 to 100000, not '0'"),
        (["watch", "--full-every", "2.5"], "a whole number from 1 to 100000, not '2.5'"),
        (["apply", "--full-every", "100001"], "a whole number from 1 to 100000, not '100001'"),
        (
            ["watch", "--metrics-addr", "9323"],
            "HOST:PORT such as 127.0.0.1:9323, not '9323'",
        ),
    ],
)
def test_bad_numeric_options_are_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command, option, value = args
    with pytest.raises(SystemExit) as e:
        main([command, "spec.yaml", option, value])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert err.endswith(f"reconcile {command}: error: argument {option}: {message}\n")
    assert "Traceback" not in err


def test_no_arguments_is_usage_on_stderr_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: reconcile ")
    assert err.endswith("reconcile: error: a SPEC or a command is needed (see --help)\n")


def test_an_unresolvable_metrics_host_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No name is looked up: the resolver is replaced by one that knows no host."""
    import socket

    def unknown(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    spec = tmp_path / "s.yaml"
    spec.write_text(f"version: 1\nroot: {tmp_path}/r\nstate_dir: {tmp_path}/s\n")
    assert main(["watch", str(spec), "--metrics-addr", "metrics.invalid:9323"]) == 1
    assert capsys.readouterr().err == (
        "error: --metrics-addr metrics.invalid:9323: host 'metrics.invalid' does not resolve "
        "(Name or service not known)\n"
    )


def test_an_os_error_without_a_file_has_no_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(args: object) -> int:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setitem(cli._COMMANDS, "schema", fail)
    assert main(["schema"]) == 1
    assert capsys.readouterr().err == "error: Connection refused\n"


def broken(args: object) -> int:
    return {}["no such key"]  # type: ignore[no-any-return]


def test_an_internal_error_is_one_line_naming_a_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("DOCKYARD_DEBUG", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setitem(cli._COMMANDS, "schema", broken)
    assert main(["schema"]) == 1
    err = capsys.readouterr().err
    [report] = tmp_path.glob("dockyard-crash-*.txt")
    assert err == (
        f"reconcile: internal error: KeyError: 'no such key'; please report it with {report}\n"
    )
    details = report.read_text()
    assert details.startswith("dockyard ")
    assert "reconcile schema\n" in details
    assert "in broken\n" in details
    assert oct(report.stat().st_mode & 0o777) == "0o600"


def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli._COMMANDS, "schema", broken)
    assert main(["schema", "--debug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n")
    assert err.endswith("reconcile: internal error: KeyError: 'no such key'\n")


def test_a_base_exception_from_an_extension_is_caught(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """pyo3 raises a Rust panic as PanicException, which is not an Exception."""

    class PanicException(BaseException):
        pass

    def panics(args: object) -> int:
        raise PanicException("attempt to subtract with overflow\nsecond line")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setitem(cli._COMMANDS, "schema", panics)
    assert main(["schema"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "reconcile: internal error: PanicException: attempt to subtract with overflow second "
        "line; please report it with "
    )
    assert err.count("\n") == 1


def test_an_interrupt_while_a_command_runs_is_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli._COMMANDS, "schema", interrupted)
    assert main(["schema"]) == 130
    assert capsys.readouterr().err == "reconcile: interrupted\n"


def reconcile_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, check=False
    )


def test_import_daemon_json_prints_a_spec_that_validates(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"bridge": "docker0", "mtu": 1450, "icc": false, "log-driver": "local"}')
    result = reconcile_cli("import", "daemon-json", str(daemon))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "Note: log-driver: not managed by dockyard; keep it in daemon.json\n"
    spec = tmp_path / "spec.yaml"
    spec.write_text(result.stdout)
    assert "network:\n  bridge:\n    name: docker0\n    mtu: 1450\n  icc: false\n" in result.stdout
    assert reconcile_cli("validate", str(spec)).returncode == 0


def test_import_from_flags_and_its_errors(tmp_path: Path) -> None:
    result = reconcile_cli("import", "daemon-json", "--from-flags", "-b docker0 --mtu=1400")
    assert (result.returncode, result.stdout) == (
        0,
        "version: 1\nnetwork:\n  bridge:\n    name: docker0\n    mtu: 1400\n",
    )
    bad = reconcile_cli("import", "daemon-json", "--from-flags", "--mtu big")
    assert (bad.returncode, bad.stderr) == (
        1,
        "error: --from-flags: mtu takes a number, got 'big'\n",
    )
    (tmp_path / "list.json").write_text("[]")
    bad = reconcile_cli("import", "daemon-json", str(tmp_path / "list.json"))
    assert (bad.returncode, bad.stderr) == (1, f"error: {tmp_path}/list.json: not a JSON object\n")


# Issue 15: the command as people use it.


def test_every_subcommand_explains_each_option_and_ends_with_examples() -> None:
    parser = cli._parser()
    for name, sub in parser.commands.items():
        for action in sub._actions:
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        assert sub.epilog is not None and sub.epilog.startswith("examples:\n"), name
        assert 2 <= sub.epilog.count("\n  reconcile ") + sub.epilog.count("| reconcile ") <= 3


def test_top_help_lists_the_commands_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert out.count("reconcile validate SPEC") == 1
    assert "{apply,plan" not in out


def test_a_misplaced_flag_reports_the_subcommands_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["plan", "spec.yaml", "--interval", "5"])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: reconcile plan [-h]")
    assert err.endswith("reconcile plan: error: unrecognized arguments: --interval 5\n")


def test_validate_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"version: 1\n")))
    assert main(["validate", "-"]) == 0
    assert capsys.readouterr().out == "<stdin>: valid\n"


def test_validate_json_lists_located_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nnetwork:\n  bridge:\n    mtu: 5\n")
    assert main(["validate", str(spec), "-o", "json"]) == 1
    assert json.loads(capsys.readouterr().out) == [
        {
            "file": str(spec),
            "line": 4,
            "col": 10,
            "path": "network.bridge.mtu",
            "message": "must be auto or a number from 68 to 65535, got 5",
        }
    ]
    assert main(["validate", str(tmp_path / "absent.yaml"), "-o", "json"]) == 1
    assert json.loads(capsys.readouterr().out) == [
        {
            "file": str(tmp_path / "absent.yaml"),
            "line": None,
            "col": None,
            "path": None,
            "message": "no such file",
        }
    ]


def test_drift_is_never_no_changes() -> None:
    the_plan = Plan(notes=[Note("dns", "warning", "/r/resolv.conf was edited by hand", True)])
    text = plan_text(the_plan, ["dns"], Style(colour=False))
    assert text == (
        "dns\n"
        "  Warning: /r/resolv.conf was edited by hand\n"
        "\n"
        "Drift: 1 thing differs from the spec and dockyard leaves it as it is (see above).\n"
    )
    assert plan_json(the_plan, "plan")["drift"] == [
        {"reconciler": "dns", "severity": "warning", "message": "/r/resolv.conf was edited by hand"}
    ]


@pytest.mark.parametrize(
    ("detailed", "changes", "drift", "code"),
    [
        (False, True, True, 0),
        (True, False, False, 0),
        (True, True, False, 2),
        (True, False, True, 2),
    ],
)
def test_exit_codes_follow_terraform(detailed: bool, changes: bool, drift: bool, code: int) -> None:
    import argparse

    notes = [Note("dns", "warning", "edited", True)] if drift else []
    args = argparse.Namespace(detailed_exitcode=detailed)
    assert cli._plan_exit(args, Plan(notes=notes), changes) == code


def test_progress_lines_end_with_done_or_failed(capsys: pytest.CaptureFixture[str]) -> None:
    from dockyard.engine import step
    from dockyard.errors import DockyardError

    with step(cli._progress, "+ directory /a"):
        pass
    with pytest.raises(DockyardError), step(cli._progress, "+ directory /b"):
        raise DockyardError("no space left")
    assert capsys.readouterr().err == (
        "+ directory /a ... done\n+ directory /b ... failed: no space left\n"
    )


def test_a_missing_metrics_directory_fails_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The spec does not even exist: the check comes before it is read, and before any change.
    metrics = tmp_path / "absent" / "dockyard.prom"
    assert main(["watch", str(tmp_path / "spec.yaml"), "--metrics-file", str(metrics)]) == 1
    assert capsys.readouterr().err == (
        f"error: --metrics-file {metrics}: directory {metrics.parent} does not exist\n"
    )


def test_a_failed_metrics_write_is_logged_and_retried(tmp_path: Path) -> None:
    from dockyard.watch import Metrics

    said: list[str] = []
    where = tmp_path / "m"
    where.mkdir()
    metrics = Metrics(None, str(where / "dockyard.prom"), said.append)
    where.rmdir()
    metrics.flush()
    assert said == [
        f"--metrics-file {where}/dockyard.prom: not written (no such file or directory); "
        "next pass retries"
    ]
    where.mkdir()
    metrics.flush()
    text = (where / "dockyard.prom").read_text()
    assert "dockyard_passes" in text and "_created" not in text


def test_each_command_declares_spec_and_its_shared_options_once() -> None:
    """One `add()` per command declares SPEC and the options it shares with others, so a
    shared option reads the same everywhere (apply and down lock alike; plan does not lock)."""
    parser = cli._parser()
    declared = {
        name: [a.dest for a in sub._actions if a.dest not in ("help", "debug")]
        for name, sub in parser.commands.items()
    }
    locking = ["detailed_exitcode", "lock_timeout", "wait"]
    output = ["output", "no_color"]
    watching = ["interval", "full_every", "metrics_addr", "metrics_file"]
    assert declared == {
        "apply": ["spec", "dry_run", *locking, *output, "force_dns", "watch", *watching],
        "plan": ["spec", "detailed_exitcode", *output, "force_dns"],
        "watch": ["spec", "output", "force_dns", *watching],
        "down": ["spec", "dry_run", *locking, "force", *output],
        "validate": ["spec", "output"],
        "show": ["spec", "container", *output],
        "schema": [],
        "defaults": [],
        "export": ["format", "spec"],
        "import": ["format", "file", "from_flags"],
    }
    helps = {
        (a.dest, a.help)
        for name, sub in parser.commands.items()
        if name not in ("validate", "show")  # their SPEC and -o say more
        for a in sub._actions
        if a.dest in ("spec", "lock_timeout", "output", "detailed_exitcode")
    }
    assert len(helps) == 4


def test_show_prints_rules_as_iptables_save_and_text_as_blocks() -> None:
    """What a person copies: each rule whole on its line, `-A CHAIN` first, as iptables-save
    prints it (a leading `!` quoted by YAML, or a long rule folded, cannot be pasted); text of
    several lines as a block."""
    import yaml

    from dockyard.render import show_section

    long_rule = '-o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "dockyard:6f55e76beade184b" -j ACCEPT'  # noqa: E501
    tables = {
        "nat": {"OUTPUT": ["! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKYARD"]},
        "filter": {"FORWARD": [long_rule, "-j DOCKER-USER"], "DOCKER": []},
    }
    text = show_section("iptables", {"backend": "nft", "tables": tables, "gone": None})
    assert text == (
        "backend: nft\n"
        "tables:\n"
        "  nat:\n"
        "    chains: [OUTPUT]\n"
        "    rules: |\n"
        "      -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKYARD\n"
        "  filter:\n"
        "    chains: [FORWARD, DOCKER]\n"
        "    rules: |\n"
        f"      -A FORWARD {long_rule}\n"
        "      -A FORWARD -j DOCKER-USER\n"
    )
    dns = {"current": "# a comment\nnameserver 192.0.2.1\n", "why": "word " * 30, "mode": "0644"}
    text = show_section("dns", dns)
    assert text.startswith("current: |\n  # a comment\n  nameserver 192.0.2.1\n")
    assert len(text.splitlines()) == 5  # nothing folded
    assert yaml.safe_load(text) == dns


def test_down_says_why_each_thing_goes_and_not_where_it_stood() -> None:
    from dockyard.reconcilers.base import Seen
    from dockyard.reconcilers.iptables import Iptables, IptablesObserved
    from dockyard.render import NOTHING_LEFT, down_line
    from dockyard.spec import load_text

    dnat = "! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"
    tables = {
        "nat": {"PREROUTING": [], "DOCKYARD": [dnat]},
        "filter": {"FORWARD": ["-s 10.0.0.1/32 -j ACCEPT"], "DOCKER-USER": [], "DOCKYARD": []},
    }
    seen = Seen()
    seen.add("iptables", IptablesObserved("nft", "", tables))
    changes, notes = Iptables().teardown(load_text("version: 1\n"), seen)
    assert notes == [] and changes[0].before == {"position": 1}  # the undo puts it back there
    bridge = Change("bridge", "bridge", "docker0", "delete", {"mtu": 1500}, None, "it was made")
    the_plan = Plan(changes=[*changes, bridge])
    assert plan_text(the_plan, ["iptables", "bridge"], Style(colour=False), teardown=True) == (
        "iptables\n"
        f"  - rule nat DOCKYARD {dnat}  (owned by dockyard)\n"
        "  - chain nat DOCKYARD  (owned by dockyard)\n"
        "  - chain filter DOCKYARD  (owned by dockyard)\n"
        "  - chain filter DOCKER-USER  (empty, and no rule but dockyard's jumps to it)\n"
        "\n"
        "bridge\n"
        "  - bridge docker0  (it was made)\n"
        "      mtu: 1500\n"
        "\n"
        "Plan: 5 to remove.\n"
    )
    state = Change("state_dir", "directory", "/s", "create", None, {"mode": "0700"}, "lock")
    assert down_line(Plan(changes=[state, bridge])) == (
        "Plan: 1 to remove (and 1 of dockyard's own directories to create, for its lock)."
    )
    assert down_line(Plan()) == NOTHING_LEFT == "Nothing of dockyard's is left on this host."
    assert down_line(Plan(changes=[state])) == (
        "Nothing of dockyard's is left on this host (its state directory aside)."
    )
    unreadable = Note("iptables", "error", "iptables-nft-save cannot show ...")
    assert down_line(Plan(changes=[state], notes=[unreadable])) == (
        "Nothing to remove of what dockyard could read; the errors above say the rest."
    )
    plain = plan_text(Plan(notes=[unreadable]), ["iptables"], Style(colour=False))
    assert plain.endswith("\nNo changes planned: the errors above stop the run.\n")
    assert "matches the spec" not in plain
    # Networking off and a table that cannot be read: `down` says so instead of nothing.
    off = Seen()
    off.add("iptables", IptablesObserved(None, "networking is disabled", unreadable="why"))
    assert Iptables().teardown(load_text("version: 1\n"), off) == (
        [],
        [Note("iptables", "error", "why")],
    )


def test_the_watch_tells_drift_when_it_appears_and_when_it_clears() -> None:
    from dockyard.watch import drift_news

    edited = Note("dns", "warning", "/r/resolv.conf was edited by hand, left alone", drift=True)
    in_the_way = Note("directories", "error", "/r/tmp is a file", drift=True)
    assert drift_news([], [edited]) == ([edited], [])
    assert drift_news([edited], [edited]) == ([], [])  # the next pass: nothing new to say
    assert drift_news([edited], [edited, in_the_way]) == ([in_the_way], [])
    assert drift_news([edited, in_the_way], [in_the_way]) == ([], [edited])
    assert drift_news([in_the_way], []) == ([], [in_the_way])


def test_a_run_starts_reading_the_tables_before_it_imports_pydantic_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`apply` and `plan` read the tables ahead from before their first heavy import; a watch
    (which reads at each pass) and the other commands do not."""
    import dockyard.cli as cli

    seen: list[str] = []

    @contextlib.contextmanager
    def ahead(spec: str | None = None) -> Iterator[None]:
        seen.append(f"ahead {spec}")
        yield

    from dockyard.state import tables_ahead

    monkeypatch.setattr(tables_ahead, "reading_ahead", ahead)
    for words, read in (
        (["apply", "s.yaml"], True),
        (["s.yaml"], True),
        (["plan", "s.yaml"], True),
        (["apply", "--dry-run", "s.yaml"], True),
        (["apply", "--watch", "s.yaml"], False),
        (["validate", "s.yaml"], False),
    ):
        seen.clear()
        args, _ = cli._parser().parse_known_args(cli._with_command(words))
        with cli._reading_ahead(args):
            pass
        assert seen == (["ahead s.yaml"] if read else []), words
