"""Errors a user can act on. Each carries a message that is printed as it is, never a traceback."""

from typing import Any


class DockyardError(Exception):
    """An error with a message meant for the person running dockyard."""


class SpecError(DockyardError):
    """The spec cannot be used; `problems` lists every located problem, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class PartiallyApplied(DockyardError):
    """A batch of changes failed part way; `applied` lists those that took effect."""

    def __init__(self, message: str, applied: list[Any]) -> None:
        super().__init__(message)
        self.applied = applied


class LockTimeout(DockyardError):
    """Another run holds the lock."""
