"""Errors a user can act on. Each carries a message that is printed as it is, never a traceback."""


class DockyardError(Exception):
    """An error with a message meant for the person running dockyard."""


class SpecError(DockyardError):
    """The spec cannot be used; `problems` lists every located problem, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class LockTimeout(DockyardError):
    """Another run holds the lock."""
