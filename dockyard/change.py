"""What a plan is made of: changes to resources, and notes about the host that are not changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Action = Literal["create", "update", "delete", "replace"]
Severity = Literal["error", "warning", "info"]

SYMBOLS: Mapping[Action, str] = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
_INVERSE: Mapping[Action, Action] = {
    "create": "delete",
    "delete": "create",
    "update": "update",
    "replace": "replace",
}

Attrs = Mapping[str, Any]


class Change(NamedTuple):
    """One step that apply performs: `before` is what was observed, `after` what the spec wants.

    `before` is None for a create and `after` is None for a delete. Values are plain JSON data so
    that plans can be rendered, compared and stored as they are. An immutable tuple: a plan
    for 100,000 published ports holds 200,000 of them.
    """

    reconciler: str
    kind: str
    name: str
    action: Action
    before: Attrs | None
    after: Attrs | None
    reason: str
    reversible: bool = True
    claim: bool = False  # record in the ledger that dockyard created (and so owns) this

    @property
    def resource(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.action]

    def undo(self) -> Change | None:
        """The change that puts back what this one replaced, or None when it cannot be undone."""
        if not self.reversible:
            return None
        return Change(
            reconciler=self.reconciler,
            kind=self.kind,
            name=self.name,
            action=_INVERSE[self.action],
            before=self.after,
            after=self.before,
            reason=f"undo: {self.reason}",
            claim=self.claim,
        )

    def differences(self) -> list[tuple[str, Any, Any]]:
        """(attribute, old, new) for every attribute the change touches, in a stable order."""
        before, after = self.before or {}, self.after or {}
        keys = list(after) + [k for k in before if k not in after]
        return [
            (k, before.get(k), after.get(k))
            for k in keys
            if self.action != "update" or before.get(k) != after.get(k)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "reconciler": self.reconciler,
            "resource": self.resource,
            "action": self.action,
            "before": dict(self.before) if self.before is not None else None,
            "after": dict(self.after) if self.after is not None else None,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Note:
    """Something the plan must say that is not a change. An `error` note stops apply.

    `drift`: the note is about something dockyard manages that differs from the spec and that
    it will not change (a file edited by hand, a foreign object in its way): reported as drift,
    never as "No changes"."""

    reconciler: str
    severity: Severity
    message: str
    drift: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"reconciler": self.reconciler, "severity": self.severity, "message": self.message}


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def add_notes(self, notes: Iterable[Note]) -> None:
        for note in notes:
            # Several reconcilers may say the same thing (networking disabled): say it once.
            if all((n.severity, n.message) != (note.severity, note.message) for n in self.notes):
                self.notes.append(note)

    @property
    def errors(self) -> list[Note]:
        return [n for n in self.notes if n.severity == "error"]

    @property
    def drift(self) -> list[Note]:
        return [n for n in self.notes if n.drift]

    def summary(self) -> dict[str, int]:
        """Counts as Terraform gives them: a replace is one create and one delete."""
        count = {"create": 0, "update": 0, "delete": 0}
        for c in self.changes:
            if c.action == "replace":
                count["create"] += 1
                count["delete"] += 1
            else:
                count[c.action] += 1
        return count
