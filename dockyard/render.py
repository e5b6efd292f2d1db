"""Turning plans, outcomes and observations into text for people and JSON for programs."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dockyard.change import Change, Note, Plan

if TYPE_CHECKING:
    from dockyard.engine import Outcome

FORMAT_VERSION = 1

_COLOURS = {"+": "32", "~": "33", "-": "31", "-/+": "35", "error": "31", "warning": "33"}


class Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def paint(self, key: str, text: str) -> str:
        code = _COLOURS.get(key)
        return f"\033[{code}m{text}\033[0m" if self.colour and code else text

    def bold(self, text: str) -> str:
        return f"\033[1m{text}\033[0m" if self.colour else text


def value_text(v: Any) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, list | tuple):
        shown = [value_text(x) for x in v[:LIST_SHOWN]]
        if len(v) > LIST_SHOWN:
            shown.append(f"... {len(v) - LIST_SHOWN:,} more")
        return "[" + ", ".join(shown) + "]"
    return str(v)


def _attributes(change: Change, hidden: Iterable[str] = ()) -> list[str]:
    out = []
    diffs = [d for d in change.differences() if d[0] not in hidden]
    width = max((len(a) for a, _, _ in diffs), default=0)
    for attr, old, new in diffs:
        label = f"{attr}:".ljust(width + 1)
        if attr == "lines" and isinstance(new or old, list):
            out.append(label.rstrip())
            out.extend(_lines_block(old or [], new or []))
        elif _multiline(old) or _multiline(new):
            out.extend(_text_block(label, old, new))
        elif change.action == "create":
            out.append(f"{label} {value_text(new)}")
        elif change.action == "delete":
            out.append(f"{label} {value_text(old)}")
        else:
            out.append(f"{label} {value_text(old)} -> {value_text(new)}")
    return out


def _lines_block(old: list[str], new: list[str]) -> list[str]:
    """A bulk change's lines: all of them when new or gone, else what it adds and removes."""
    if not old or not new:
        return _first("|", new or old)
    was, will = set(old), set(new)
    return _first("+", [x for x in new if x not in was]) + _first(
        "-", [x for x in old if x not in will]
    )


def _first(mark: str, lines: list[str]) -> list[str]:
    out = [f"  {mark} {one_line(line)}" for line in lines[:LINES_SHOWN]]
    if len(lines) > LINES_SHOWN:
        out.append(f"  {mark} ... {len(lines) - LINES_SHOWN:,} more")
    return out


def _multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value.rstrip("\n")


def _text_block(label: str, old: Any, new: Any) -> list[str]:
    """A file's content: the whole text when it is new, a unified diff when it changes."""
    if not isinstance(old, str) or not isinstance(new, str):
        text = new if isinstance(new, str) else old
        return [label.rstrip(), *(f"  | {line}" for line in text.splitlines())]
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
    return [label.rstrip(), *(f"  {line}" for line in list(diff)[2:])]


def one_line(text: str) -> str:
    """A name shown on its line: a newline in it (a rule's comment can hold one) as `\\n`, so
    that it cannot pass for a line of the plan."""
    return text.replace("\n", "\\n") if "\n" in text else text


def change_lines(change: Change, style: Style, hidden: Iterable[str] = ()) -> list[str]:
    symbol = style.paint(change.symbol, change.symbol)
    head = f"  {symbol} {one_line(change.resource)}  ({change.reason})"
    return [head, *(f"      {line}" for line in _attributes(change, hidden))]


# In `down`, where a rule stands is not why it goes (deletes name the rule's whole text);
# the undo of a failed down still puts it back there.
HIDDEN_IN_TEARDOWN = ("position",)
NOTHING_LEFT = "Nothing of dockyard's is left on this host."
STOPPED = "No changes planned: the errors above stop the run."
UNSEEN_LEFT = "Nothing to remove of what dockyard could read; the errors above say the rest."


LIST_SHOWN = 8  # items of a long list value shown in text; JSON has them all
LINES_SHOWN = 3  # of a bulk change's `lines`
# A plan for 100,000 published ports is not read line by line: past this, a summary.
LONG_PLAN = 60
SHOWN_OF_LONG_PLAN = 20

_NOTE_LABEL = {"error": "Error", "warning": "Warning", "info": "Note"}


def note_line(note: Note, style: Style) -> str:
    label = style.paint(note.severity, _NOTE_LABEL[note.severity])
    return f"  {label}: {note.message}"


def summary_line(plan: Plan) -> str:
    n = plan.summary()
    return f"Plan: {n['create']} to create, {n['update']} to update, {n['delete']} to delete."


def drift_line(plan: Plan) -> str:
    """What differs from the spec and stays as it is: drift, never "No changes"."""
    count = len(plan.drift)
    things = "thing differs" if count == 1 else "things differ"
    return f"Drift: {count} {things} from the spec and dockyard leaves it as it is (see above)."


def down_line(plan: Plan) -> str:
    """The summary of a `down` plan: what it removes; the state directory it makes (for its
    lock, when there is none yet) is said apart."""
    n = plan.summary()
    made = n["create"] + n["update"]
    if not n["delete"] and plan.errors:
        return UNSEEN_LEFT
    if not n["delete"]:
        return NOTHING_LEFT if not made else f"{NOTHING_LEFT[:-1]} (its state directory aside)."
    also = f" (and {made} of dockyard's own directories to create, for its lock)" if made else ""
    return f"Plan: {n['delete']} to remove{also}."


def down_complete(outcome: Outcome) -> str | None:
    removed = sum(c.action == "delete" for c in outcome.applied)
    return f"Down complete: {removed} removed; verified." if removed else None


def plan_text(plan: Plan, order: Iterable[str], style: Style, teardown: bool = False) -> str:
    """The plan for people; with `teardown`, a plan of `down`, which speaks of removing."""
    lines: list[str] = []
    hidden = HIDDEN_IN_TEARDOWN if teardown else ()
    names = list(order)
    # Notes about dockyard's own state (its ledger) come first, under their own heading.
    # and so do the changes that make it (state_dir).
    mine = {n.reconciler for n in plan.notes} | {c.reconciler for c in plan.changes}
    names[:0] = sorted(mine - set(names))
    for name in names:
        changes = [c for c in plan.changes if c.reconciler == name]
        notes = [n for n in plan.notes if n.reconciler == name]
        if not changes and not notes:
            continue
        lines.append(style.bold(name))
        lines.extend(note_line(n, style) for n in notes)
        shown = changes if len(changes) <= LONG_PLAN else changes[:SHOWN_OF_LONG_PLAN]
        for c in shown:
            lines.extend(change_lines(c, style, hidden))
        if len(shown) < len(changes):
            rest = len(changes) - len(shown)
            lines.append(f"  ... and {rest:,} more changes of {name} (-o json lists every one)")
        lines.append("")
    if teardown:
        lines.append(down_line(plan))
    elif plan.changes:
        lines.append(summary_line(plan))
    elif plan.errors:
        lines.append(STOPPED)
    elif not plan.drift:
        lines.append("No changes. The host matches the spec.")
    if plan.drift:
        lines.append(drift_line(plan))
    return "\n".join(lines) + "\n"


def plan_json(plan: Plan, command: str, **extra: Any) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "command": command,
        "changes": [c.to_json() for c in plan.changes],
        "notes": [n.to_json() for n in plan.notes],
        "summary": plan.summary(),
        "drift": [n.to_json() for n in plan.drift],
        **extra,
    }


def outcome_json(plan: Plan, outcome: Outcome, command: str) -> dict[str, Any]:
    """The document of a run that applied its plan, or tried to: what was applied, what was
    rolled back, and whether the host was verified to converge."""
    return plan_json(
        plan,
        command,
        applied=[c.to_json() for c in outcome.applied],
        rolled_back=[c.to_json() for c in outcome.rolled_back],
        undo_failures=outcome.undo_failures,
        failed=outcome.failed,
        error=outcome.error,
        converged=outcome.ok,
    )


def observation_data(observed: object) -> Any:
    if dataclasses.is_dataclass(observed) and not isinstance(observed, type):
        return dataclasses.asdict(observed)
    return observed


def without_nulls(data: Any) -> Any:
    """The same data without the keys whose value is None: what a person needs to read."""
    if isinstance(data, dict):
        return {k: without_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list | tuple):
        return [without_nulls(v) for v in data]
    return data


def show_section(name: str, data: Any) -> str:
    """One reconciler's part of `reconcile show`, as YAML a person can copy from: no line
    folded, text of several lines as a block (`|`), iptables rules as iptables-save prints
    them. JSON (`-o json`) keeps the data as it is."""
    import yaml

    shown = without_nulls(data)
    if name == "iptables" and isinstance(shown, dict) and isinstance(shown.get("tables"), dict):
        shown = {**shown, "tables": {t: _saved(c) for t, c in shown["tables"].items()}}
    text: str = yaml.dump(
        shown, Dumper=_show_dumper(), sort_keys=False, default_flow_style=False, width=_NO_FOLD
    )
    return text


_NO_FOLD = 1 << 30  # PyYAML folds lines longer than `width`; a rule cut in two is not copied


class _Inline(list[Any]):
    """A short list shown on one line (`[PREROUTING, INPUT, ...]`)."""


def _saved(chains: dict[str, list[str]]) -> dict[str, Any]:
    """A table's chains, and its rules one a line as iptables-save prints them."""
    rules = "".join(f"-A {chain} {line}\n" for chain, lines in chains.items() for line in lines)
    return {"chains": _Inline(chains), **({"rules": rules} if rules else {})}


@functools.cache
def _show_dumper() -> type:
    """PyYAML's safe dumper, with block scalars and one-line lists (imported on first use)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    def inline(dumper: yaml.SafeDumper, value: _Inline) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)

    Dumper.add_representer(str, text)
    Dumper.add_representer(_Inline, inline)
    return Dumper


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, default=str) + "\n"
