"""The `reconcile` command. Results go to stdout, progress and errors to stderr.

Only the standard library is imported at start, so that `--help` answers at once; the spec
models and the reconcilers are imported when a command needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys

from dockyard import process

# Not `typing.TYPE_CHECKING`: importing typing alone costs `reconcile --help` a few ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from dockyard.spec import Spec

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
EXIT_USAGE = 2  # argparse's code, for no arguments at all
COMMANDS = (
    "apply",
    "plan",
    "watch",
    "down",
    "validate",
    "show",
    "schema",
    "defaults",
    "export",
    "import",
)

DESCRIPTION = """\
Prepare a container host the way Docker 1.x's daemon did at start-up, declaratively:
observe the host, diff it against SPEC, apply only the difference, verify, and roll back
this run's changes if anything fails.

commands:
  reconcile SPEC            converge the host (same as `reconcile apply SPEC`)
  reconcile plan SPEC       show what would change; change nothing (also: SPEC --dry-run)
  reconcile watch SPEC      converge, then keep the host converged (also: SPEC --watch)
  reconcile down SPEC       remove the runtime state dockyard owns (rules, chains, its bridge,
                            the pid file); never data
  reconcile validate SPEC   check the spec only
  reconcile show [SPEC]     what dockyard observes on this host, per reconciler
  reconcile schema          the spec's JSON Schema (for editors)
  reconcile defaults        Docker 1.x's defaults, as a spec
  reconcile export daemon-json SPEC
                            the daemon.json that makes dockerd agree with SPEC
  reconcile import daemon-json FILE|--from-flags "..."
                            the spec equivalent to a daemon.json or to dockerd's flags

exit codes (as Terraform's):
  0  success: converged, or a plan printed (whatever it shows pending)
  1  error (bad spec, failed check, lock held, failed apply: this run's changes were undone)
  2  only with --detailed-exitcode: changes pending (plan, --dry-run), or applied, or drift

`reconcile COMMAND --help` explains each command's options, with examples.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's, at the terminal's width as shutil.get_terminal_size finds it, without
    importing shutil (and with it bz2, lzma and fnmatch) for every `--help`."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Top(_Parser):
    """The top-level parser; it knows its subcommands' parsers, so that a flag a subcommand
    lacks is reported with that subcommand's usage, not the top level's."""

    commands: dict[str, argparse.ArgumentParser]


SPEC_HELP = "the spec file (YAML); `reconcile defaults` prints one to start from"
OUTPUT_HELP = "text for people (default), or json: one versioned document on stdout"
DETAILED_HELP = (
    "exit 2 when there are changes (pending, or applied) or drift; 0 when there is nothing, "
    "1 on an error. Without it, success is 0 whatever is pending (Terraform's convention)"
)
LOCK_HELP = (
    "how long to wait for another run's lock (default 30; 0 to 86400); a watch never lets go, "
    "so while one holds it the run stops at once unless --wait"
)
WAIT_HELP = "wait --lock-timeout seconds even when a watch holds the lock"
FORCE_DNS_HELP = "rewrite <root>/resolv.conf even when it was edited by hand"

EXAMPLES = {
    "apply": """\
examples:
  reconcile /etc/dockyard/spec.yaml                      converge; 0 when converged
  reconcile apply spec.yaml --detailed-exitcode          2 when it changed something
  reconcile apply spec.yaml --dry-run -o json            the plan, as JSON
""",
    "plan": """\
examples:
  reconcile plan spec.yaml                               what would change; exits 0
  reconcile plan spec.yaml --detailed-exitcode          0 nothing, 1 error, 2 changes or drift
  reconcile plan spec.yaml -o json | jq .summary
""",
    "watch": """\
examples:
  reconcile watch spec.yaml                              converge, then keep converging
  reconcile watch spec.yaml --interval 60 -o json        one JSON object per event
  reconcile watch spec.yaml --metrics-file /var/lib/node_exporter/dockyard.prom
""",
    "down": """\
examples:
  reconcile down spec.yaml --dry-run                     what would be removed; exits 0
  reconcile down spec.yaml                               remove dockyard's runtime state
  reconcile down spec.yaml --force                       even with containers attached
""",
    "validate": """\
examples:
  reconcile validate spec.yaml                           check the spec only
  generate-spec | reconcile validate -                   the spec from stdin
  reconcile validate spec.yaml -o json                   problems as [{file, line, col, ...}]
""",
    "show": """\
examples:
  reconcile show                                         the host, against Docker's defaults
  reconcile show spec.yaml -o json                       as JSON
  reconcile show spec.yaml --container 4f2a              one container by an id prefix
""",
    "schema": """\
examples:
  reconcile schema > dockyard.schema.json                for editors: a spec's first line
                                 # yaml-language-server: $schema=dockyard.schema.json
  reconcile schema | jq '.properties | keys'             the spec's top-level fields
""",
    "defaults": """\
examples:
  reconcile defaults > spec.yaml                         start a spec from Docker's defaults
  reconcile defaults | reconcile validate -
""",
    "export": """\
examples:
  reconcile export daemon-json spec.yaml > /etc/docker/daemon.json
  reconcile export daemon-json spec.yaml | jq .mtu
""",
    "import": """\
examples:
  reconcile import daemon-json /etc/docker/daemon.json > spec.yaml
  reconcile import daemon-json --from-flags "--bip 10.1.0.1/24 --mtu 1400"
""",
}


if TYPE_CHECKING:
    Options = Callable[[argparse.ArgumentParser], object]  # adds arguments to a parser


def _parser() -> _Top:
    top = _Top(
        prog="reconcile",
        description=DESCRIPTION,
        formatter_class=_Formatter,
        usage=(
            "reconcile [apply|plan|watch|down|validate|show|schema|defaults|export|import] "
            "[SPEC] [options]"
        ),
    )
    top.add_argument("--version", action="store_true", help="print the version and exit")
    top.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    # The commands are listed once, in the description; `help=SUPPRESS` keeps argparse from
    # listing them again.
    sub = top.add_subparsers(dest="command", parser_class=_Parser, prog="reconcile")
    sub.help = argparse.SUPPRESS
    sub.metavar = "COMMAND"
    debug = _Parser(add_help=False, formatter_class=_Formatter)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    top.commands = {}

    def add(name: str, description: str, *options: Options) -> None:
        """A command: its description, its options in the order given, its examples."""
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            parents=[debug],
            description=description,
            epilog=EXAMPLES[name],
            formatter_class=_Formatter,
        )
        for declare in options:
            declare(parser)
        top.commands[name] = parser

    add(
        "apply",
        "Converge the host to SPEC: observe, diff, apply, verify; undo this "
        "run's changes if anything fails. `reconcile SPEC` means the same.",
        _spec,
        _dry_run,
        _detailed,
        _locking,
        _output,
        _force_dns,
        _keep_watching,
        _watching,
    )
    add(
        "plan",
        "Print what apply would change; change nothing.",
        _spec,
        _detailed,
        _output,
        _force_dns,
    )
    add(
        "watch",
        "Converge, then keep the host converged: a pass every --interval and "
        "at once on a netlink event. SIGHUP reloads SPEC; SIGTERM stops.",
        _spec,
        _output_without_colour,
        _force_dns,
        _watching,
    )
    add(
        "down",
        "Remove the runtime state dockyard owns: its rules and chains, the "
        "bridge it created, a stale pid file. Never data.",
        _spec,
        _dry_run,
        _detailed,
        _locking,
        _force_down,
        _output,
    )
    add(
        "validate",
        "Check the spec only; every problem at once, with its place.",
        _spec_or_stdin,
        _problems_output,
    )
    add(
        "show",
        "What each reconciler observes on this host, and what it would choose.",
        _spec_or_defaults,
        _container,
        _output,
    )
    add("schema", "The spec's JSON Schema, for editors.")
    add("defaults", "Docker 1.x's defaults, as a spec.")
    add(
        "export",
        "The daemon.json that makes dockerd agree with SPEC on this host.",
        _daemon_json,
        _spec,
    )
    add(
        "import",
        "The spec equivalent to a daemon.json or to dockerd's flags.",
        _daemon_json,
        _daemon_source,
    )
    return top


def _spec(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)


def _spec_or_stdin(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP + "; - reads it from stdin")


def _spec_or_defaults(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", nargs="?", help=SPEC_HELP + " (default: defaults)")


def _flag(name: str, help: str) -> Options:
    """An option that is on or off."""
    return lambda p: p.add_argument(name, action="store_true", help=help)


_dry_run = _flag("--dry-run", "print the plan, change nothing")
_detailed = _flag("--detailed-exitcode", DETAILED_HELP)
_force_dns = _flag("--force-dns", FORCE_DNS_HELP)
_force_down = _flag("--force", "remove the bridge even with containers attached or a live daemon")
_keep_watching = _flag("--watch", "keep converging (reconcile watch)")


def _locking(p: argparse.ArgumentParser) -> None:
    _seconds_option(p, "--lock-timeout", LOCK_TIMEOUT_RANGE, LOCK_HELP)
    p.add_argument("--wait", action="store_true", help=WAIT_HELP)


def _seconds_option(
    p: argparse.ArgumentParser, name: str, bounds: tuple[float, float], help: str
) -> None:
    p.add_argument(name, type=_seconds(*bounds), default=30.0, metavar="SECONDS", help=help)


def _output_as(help: str) -> Options:
    """-o text|json."""
    return lambda p: p.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help=help
    )


_output_without_colour = _output_as(OUTPUT_HELP)
_problems_output = _output_as(
    "text (default), or json: the problems as [{file, line, col, path, message}]"
)


def _output(p: argparse.ArgumentParser) -> None:
    _output_without_colour(p)
    p.add_argument("--no-color", action="store_true", help="never colour (also: NO_COLOR)")


def _watching(p: argparse.ArgumentParser) -> None:
    _seconds_option(
        p,
        "--interval",
        INTERVAL_RANGE,
        "a full pass every SECONDS, +-10%% (default 30; 1 to 86400)",
    )
    p.add_argument(
        "--full-every",
        type=_count(*FULL_EVERY_RANGE),
        default=10,
        metavar="PASSES",
        help="read legacy iptables tables in full at least every PASSES passes, even when "
        "their sizes say nothing changed (default 10; 1 to 100000)",
    )
    p.add_argument(
        "--metrics-addr",
        type=_address,
        metavar="HOST:PORT",
        help="serve Prometheus metrics there (such as 127.0.0.1:9323, or [::1]:9323)",
    )
    p.add_argument(
        "--metrics-file",
        metavar="PATH",
        help="write them to PATH for node-exporter's textfile collector; its directory "
        "must exist (checked at start)",
    )


def _container(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--container",
        metavar="PREFIX",
        help="only the container whose id starts with PREFIX (unique, as Docker's truncindex)",
    )


def _daemon_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=("daemon-json",), help="the format: daemon-json")


def _daemon_source(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("file", metavar="FILE", nargs="?", help="a daemon.json")
    source.add_argument("--from-flags", metavar="FLAGS", help="dockerd's command line, quoted")


DEBUG_HELP = "on an internal error, print the traceback here"
INTERVAL_RANGE = (1.0, 86400.0)
FULL_EVERY_RANGE = (1, 100000)
LOCK_TIMEOUT_RANGE = (0.0, 86400.0)


def _seconds(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds from `low` to `high` (never NaN: every
    comparison with it is false, so `--lock-timeout nan` waited forever)."""

    def parse(text: str) -> float:
        import math

        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(
                f"a number of seconds from {low:g} to {high:g}, not {text!r}"
            )
        return value

    return parse


def _count(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"a whole number from {low} to {high}, not {text!r}")
        return value

    return parse


def _address(text: str) -> str:
    if host_and_port(text) is None:
        raise argparse.ArgumentTypeError(f"HOST:PORT such as 127.0.0.1:9323, not {text!r}")
    return text


def host_and_port(text: str) -> tuple[str, int] | None:
    """`HOST:PORT`, or `[IPv6]:PORT` as RFC 3986 writes it: the host without its brackets, and
    the port; None when it is neither."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif "[" in host or "]" in host:
        return None
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def _with_command(argv: list[str]) -> list[str]:
    """`reconcile SPEC ...` means `reconcile apply SPEC ...`."""
    if not argv or argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version"):
        return argv
    return ["apply", *argv]


def main(argv: list[str] | None = None, interruptible: bool = False) -> int:
    """The command. `interruptible` (the `reconcile` process, not a caller in Python): SIGINT
    raises KeyboardInterrupt only while this runs, so that it unwinds through the run's
    cleanup; before and after, the process exits at once (see process.py)."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        if interruptible:
            process.raise_on_interrupt()
        return _run(words, interruptible)
    except BrokenPipeError:
        # The reader went away (`reconcile show | head`): nothing more to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except KeyboardInterrupt:
        return interrupted()
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # a Rust panic from an extension is not an Exception
        if interruptible and process.was_interrupted():
            return interrupted()
        return _fail(e, words) if isinstance(e, Exception) else _internal_error(e, words)
    finally:
        if interruptible:
            process.exit_on_interrupt()


def interrupted() -> int:
    print("reconcile: interrupted", file=sys.stderr)
    return process.EXIT_INTERRUPTED


def _run(words: list[str], interruptible: bool = False) -> int:
    if not words or words == ["--debug"]:
        parser = _parser()
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: a SPEC or a command is needed (see --help)", file=sys.stderr)
        return EXIT_USAGE
    parser = _parser()
    args, extra = parser.parse_known_args(_with_command(words))
    if extra:
        where = parser.commands.get(args.command or "", parser)
        where.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.version:
        from dockyard import __version__

        print(f"dockyard {__version__}")
        return EXIT_OK
    if args.command is None:
        _parser().print_help()
        return EXIT_ERROR
    with _reading_ahead(args):
        if interruptible:
            with process.DeferredInterrupts():
                import pydantic_core  # noqa: F401
                import yaml_rs  # noqa: F401
        return int(_COMMANDS[args.command](args))


def _reading_ahead(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    """For the commands that compare the tables with a spec (plan, apply; not a watch, which
    reads them at each pass), the tables' read started before anything more is imported:
    pydantic-core alone takes 30 ms (state/tables_ahead.py)."""
    if args.command == "plan" or (args.command == "apply" and not args.watch):
        from dockyard.state.tables_ahead import reading_ahead

        return reading_ahead(args.spec)
    return contextlib.nullcontext()


def _fail(e: Exception, words: list[str]) -> int:
    from dockyard.errors import DockyardError, SpecError

    if isinstance(e, SpecError):
        for problem in e.problems:
            print(problem, file=sys.stderr)
    elif isinstance(e, DockyardError):
        print(f"error: {e}", file=sys.stderr)
    elif isinstance(e, PermissionError):
        print(f"error: permission denied: {e.filename}; run as root", file=sys.stderr)
    elif isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror}{where}", file=sys.stderr)
    else:
        return _internal_error(e, words)
    return EXIT_ERROR


def _internal_error(e: BaseException, words: list[str]) -> int:
    """The last resort: a bug. One line that says so and where the details are; the
    traceback itself with --debug."""
    from dockyard import crash

    what = crash.summary(e)
    if "--debug" in words or os.environ.get("DOCKYARD_DEBUG"):
        crash.print_traceback(e)
        print(f"reconcile: internal error: {what}", file=sys.stderr)
        return EXIT_ERROR
    report = crash.write_report(e, words)
    where = f"; please report it with {report}" if report else "; run again with --debug"
    print(f"reconcile: internal error: {what}{where}", file=sys.stderr)
    return EXIT_ERROR


def _style(args: argparse.Namespace) -> Any:
    from dockyard.render import Style

    colour = sys.stdout.isatty() and not args.no_color and not os.environ.get("NO_COLOR")
    return Style(colour)


def _load(path: str) -> Spec:
    from dockyard import spec

    return spec.load(path)


def _progress(message: str) -> None:
    """`+ directory /x ... done` on one line: a step's start waits for its end."""
    start = message.endswith(" ...")
    print(message, end=" " if start else "\n", file=sys.stderr, flush=True)


STDIN_SOURCE = "<stdin>"


def cmd_validate(args: argparse.Namespace) -> int:
    import json

    from dockyard.errors import SpecError

    source = STDIN_SOURCE if args.spec == "-" else args.spec
    try:
        _load_stdin() if args.spec == "-" else _load(args.spec)
    except SpecError as e:
        if args.output != "json":
            raise
        print(json.dumps([_problem_json(p) for p in e.problems], indent=2))
        return EXIT_ERROR
    print("[]" if args.output == "json" else f"{source}: valid")
    return EXIT_OK


def _load_stdin() -> Spec:
    """The spec read from stdin, with the same limits as a file's."""
    from dockyard import spec
    from dockyard.errors import SpecError
    from dockyard.spec.limits import MAX_BYTES
    from dockyard.spec.reading import too_large

    raw = sys.stdin.buffer.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise SpecError([too_large(STDIN_SOURCE)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError([f"{STDIN_SOURCE}: not UTF-8 text (offset {e.start})"]) from None
    return spec.load_text(text, STDIN_SOURCE)


_LOCATED = re.compile(r"(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<rest>.*)", re.DOTALL)
_FIELD = re.compile(r"(?P<path>[A-Za-z_][\w.\[\]-]*): (?P<message>.*)", re.DOTALL)


def _problem_json(problem: str) -> dict[str, Any]:
    """`spec.yaml:3:5: network.bridge.mtu: too large` as {file, line, col, path, message};
    line, col and path are null where the problem has none (a file that cannot be read)."""
    doc: dict[str, Any] = {"file": None, "line": None, "col": None, "path": None}
    located = _LOCATED.fullmatch(problem)
    if located:
        doc.update(file=located["file"], line=int(located["line"]), col=int(located["col"]))
        rest = located["rest"]
    else:
        doc["file"], _, rest = problem.partition(": ")
    field = _FIELD.fullmatch(rest)
    if field:
        doc["path"], rest = field["path"], field["message"]
    doc["message"] = rest
    return doc


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from dockyard.spec import Spec

    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    print(json.dumps(schema, indent=2))
    return EXIT_OK


def cmd_defaults(args: argparse.Namespace) -> int:
    import yaml

    from dockyard.spec import Spec

    doc = Spec(version=1).model_dump(mode="json")
    print("# Docker 1.x's defaults: `version: 1` alone means exactly this.")
    print(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None), end="")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from dockyard import engine, render
    from dockyard.reconcilers import default_set
    from dockyard.spec import Spec
    from dockyard.state.host import Host

    spec = _load(args.spec) if args.spec else Spec(version=1)
    reconcilers = engine.order(default_set())
    if args.container is not None:
        return _show_container(args, spec, Host.for_spec(spec))
    host = Host.for_spec(spec)
    host.thorough = True
    obs = engine.observe(reconcilers, spec, host)
    observed = {name: render.observation_data(o) for name, o in obs.seen.items()}
    for r in reconcilers:
        explain = getattr(r, "explain", None)
        if explain is not None and r.name in observed:
            observed[r.name] = {**observed[r.name], "planned": explain(spec, obs.seen)}
    if args.output == "json":
        doc = {
            "format_version": render.FORMAT_VERSION,
            "command": "show",
            "observed": observed,
            "notes": [n.to_json() for n in obs.notes],
        }
        print(render.dumps(doc), end="")
        return EXIT_OK
    style = _style(args)
    for r in reconcilers:
        print(style.bold(r.name))
        if r.name in observed:
            text = render.show_section(r.name, observed[r.name])
            print("".join(f"  {line}\n" for line in text.splitlines()), end="")
        for note in obs.notes:
            if note.reconciler == r.name:
                print(render.note_line(note, style))
    return EXIT_OK


def _show_container(args: argparse.Namespace, spec: Spec, host: Any) -> int:
    import dataclasses

    from dockyard import render
    from dockyard.reconcilers.containers import Containers, find

    found = find(args.container, Containers().observe(spec, host).entries)
    data = render.without_nulls(dataclasses.asdict(found))
    if args.output == "json":
        doc = {"format_version": render.FORMAT_VERSION, "command": "show", "container": data}
        print(render.dumps(doc), end="")
    else:
        print("\n".join(f"{k}: {render.value_text(v)}" for k, v in data.items()))
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    # The tables are being read ahead (`_reading_ahead`), beside the imports and the spec.
    from dockyard import engine, render
    from dockyard.reconcilers import default_set
    from dockyard.state.host import Host

    spec = _load(args.spec)
    reconcilers = engine.order(default_set(force_dns=args.force_dns))
    host = Host.for_spec(spec)
    observed = engine.observe(reconcilers, spec, host)
    the_plan = engine.with_state_dir(
        engine.plan(reconcilers, spec, observed), engine.state_dir_changes(host)
    )
    process.hold_to_the_end(spec, reconcilers, observed, the_plan)
    pending = bool(the_plan.changes)
    if args.output == "json":
        print(render.dumps(render.plan_json(the_plan, "plan", pending=pending)), end="")
    else:
        print(render.plan_text(the_plan, [r.name for r in reconcilers], _style(args)), end="")
    return _plan_exit(args, the_plan, pending)


def _plan_exit(args: argparse.Namespace, the_plan: Any, changed: bool) -> int:
    """Terraform's convention: 0 on success whatever is pending, 1 on an error; with
    --detailed-exitcode, 2 when something changes or changed, or drift was found."""
    if the_plan.errors:
        return EXIT_ERROR
    detailed = getattr(args, "detailed_exitcode", False)
    return EXIT_CHANGES if detailed and (changed or the_plan.drift) else EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    from dockyard import watch

    options = watch.Options(
        spec_path=args.spec,
        interval=args.interval,
        full_every=args.full_every,
        output=args.output,
        metrics_addr=args.metrics_addr,
        metrics_file=args.metrics_file,
        force_dns=args.force_dns,
    )
    return watch.main(options)


def cmd_down(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dockyard import engine, lock, render
    from dockyard.reconcilers import default_set
    from dockyard.state.host import Host

    spec = _load(args.spec)
    reconcilers = engine.order(default_set(force_down=args.force))
    host = Host.for_spec(spec)
    style = _style(args)
    if args.dry_run:
        planned = engine.plan(reconcilers, spec, engine.observe(reconcilers, spec, host), True)
        the_plan = engine.with_state_dir(planned, engine.down_state_dir_changes(planned, host))
        if args.output == "json":
            print(render.dumps(render.plan_json(the_plan, "down", pending=bool(the_plan.changes))))
        else:
            print(_down_text(the_plan, reconcilers, style), end="")
        return _plan_exit(args, the_plan, bool(the_plan.changes))
    idle = engine.idle_down(reconcilers, spec, host)
    if idle is not None:
        if args.output == "text":
            print(_down_text(idle, reconcilers, style), end="")
        return _report(args, idle, engine.Outcome(idle), style, "down")
    made = engine.prepare_state_dir(host)
    with lock.exclusive(Path(host.state_dir) / "lock", args.lock_timeout, wait_for_watch=args.wait):
        the_plan = engine.with_state_dir(
            engine.plan(reconcilers, spec, engine.observe(reconcilers, spec, host), True), made
        )
        if args.output == "text":
            print(_down_text(the_plan, reconcilers, style), end="")
        outcome = engine.apply(the_plan, reconcilers, spec, host, _progress, teardown=True)
    return _report(args, the_plan, outcome, style, "down")


def _down_text(the_plan: Any, reconcilers: list[Any], style: Any) -> str:
    from dockyard import render

    order = [r.name for r in reversed(reconcilers)]
    return render.plan_text(the_plan, order, style, teardown=True)


def cmd_apply(args: argparse.Namespace) -> int:
    if args.watch:
        return cmd_watch(args)
    if args.dry_run:
        return cmd_plan(args)
    from pathlib import Path

    # The tables are being read ahead (`_reading_ahead`), as for cmd_plan.
    from dockyard import engine, lock, render
    from dockyard.reconcilers import default_set
    from dockyard.state.host import Host

    spec = _load(args.spec)
    reconcilers = engine.order(default_set(force_dns=args.force_dns))
    host = Host.for_spec(spec)
    style = _style(args)

    # The checks that need nothing of the host come first: a failed check changes nothing,
    # not even dockyard's own state directory.
    early = [r for r in reconcilers if not r.after]
    early_plan = engine.plan(early, spec, engine.observe(early, spec, host))
    if early_plan.errors:
        return _report(args, early_plan, engine.apply(early_plan, early, spec, host), style)

    made = engine.prepare_state_dir(host)
    with lock.exclusive(Path(host.state_dir) / "lock", args.lock_timeout, wait_for_watch=args.wait):
        the_plan = engine.with_state_dir(
            engine.plan(reconcilers, spec, engine.observe(reconcilers, spec, host)), made
        )
        if args.output == "text":
            print(render.plan_text(the_plan, [r.name for r in reconcilers], style), end="")
        outcome = engine.apply(the_plan, reconcilers, spec, host, _progress)
    process.hold_to_the_end(spec, reconcilers, the_plan, outcome)
    return _report(args, the_plan, outcome, style)


def _report(
    args: argparse.Namespace, the_plan: Any, outcome: Any, style: Any, command: str = "apply"
) -> int:
    from dockyard import render

    if args.output == "json":
        print(render.dumps(render.outcome_json(the_plan, outcome, command)), end="")
    elif outcome.ok and command == "down":
        done = render.down_complete(outcome)
        if done:
            print(done)
    elif outcome.ok and outcome.applied:
        n = the_plan.summary()
        print(
            f"{command.capitalize()} complete: {n['create']} created, {n['update']} updated, "
            f"{n['delete']} deleted; verified."
        )
    elif not outcome.ok:
        print(style.paint("error", "Error:") + f" {outcome.error}", file=sys.stderr)
        for c in outcome.rolled_back:
            print(f"  rolled back: {c.symbol} {c.resource}", file=sys.stderr)
        for failure in outcome.undo_failures:
            print(f"  NOT rolled back: {failure}", file=sys.stderr)
    if not outcome.ok:
        return EXIT_ERROR
    return _plan_exit(args, the_plan, bool(outcome.applied))


def cmd_export(args: argparse.Namespace) -> int:
    """The daemon.json for this host: what `mtu: auto` and the derived nameservers come to
    here, observed (read only), so that containers get the spec's MTU and DNS."""
    import json

    from dockyard import daemon_json, engine
    from dockyard.errors import DockyardError
    from dockyard.reconcilers.bridge import Bridge, BridgeObserved, desired_mtu
    from dockyard.reconcilers.dns import Dns, DnsObserved, derive
    from dockyard.state.host import Host

    spec = _load(args.spec)
    reconcilers = engine.order([Bridge(), Dns()])
    obs = engine.observe(reconcilers, spec, Host.for_spec(spec))
    if obs.notes:
        raise DockyardError("; ".join(f"{n.reconciler}: {n.message}" for n in obs.notes))
    dns = derive(spec, obs.seen[DnsObserved])
    if dns.error:
        raise DockyardError(f"dns: {dns.error}")
    mtu = desired_mtu(spec, obs.seen[BridgeObserved])
    doc = daemon_json.export(spec, mtu, list(dns.nameservers))
    print(json.dumps(doc, indent=2))
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import yaml

    from dockyard import daemon_json
    from dockyard.errors import DockyardError, SpecError
    from dockyard.state import safepath

    origin = "--from-flags" if args.from_flags is not None else args.file
    if args.from_flags is not None:
        daemon = daemon_json.parse_flags(args.from_flags)
    else:
        path = Path(args.file)
        try:
            daemon = json.loads(safepath.read_file(path))
        except FileNotFoundError:
            raise DockyardError(f"{path}: no such file") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise DockyardError(f"{path}: not JSON ({e})") from None
        except RecursionError:
            raise DockyardError(f"{path}: not JSON (nested too deeply to read)") from None
        if not isinstance(daemon, dict):
            raise DockyardError(f"{path}: not a JSON object")
    spec, notes = daemon_json.to_spec(daemon)
    refused = daemon_json.problems(spec, origin)
    if refused:
        raise SpecError(refused)
    for note in notes:
        print(f"Note: {note}", file=sys.stderr)
    print(yaml.safe_dump(spec, sort_keys=False), end="")
    return EXIT_OK


_COMMANDS = {
    "apply": cmd_apply,
    "plan": cmd_plan,
    "watch": cmd_watch,
    "down": cmd_down,
    "validate": cmd_validate,
    "show": cmd_show,
    "schema": cmd_schema,
    "defaults": cmd_defaults,
    "export": cmd_export,
    "import": cmd_import,
}
