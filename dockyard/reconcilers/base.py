"""The contract every bootstrap concern fulfils, and the observations they share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from dockyard.change import Change, Note
from dockyard.spec import Spec
from dockyard.state.host import Host

T = TypeVar("T")

# Every network reconciler says this when the bridge is `none`; the plan prints it once.
NETWORKING_DISABLED = (
    "networking is disabled (network.bridge.name: none): "
    "no bridge, no iptables rules, ip_forward left as it is"
)


class Seen:
    """What every reconciler observed in one pass, looked up by the observation's type.

    Pure diffs may read the observations of the reconcilers they come `after`.
    """

    def __init__(self) -> None:
        self._by_type: dict[type, object] = {}
        self._by_name: dict[str, object] = {}

    def add(self, name: str, observed: object) -> None:
        self._by_type[type(observed)] = observed
        self._by_name[name] = observed

    def __getitem__(self, kind: type[T]) -> T:
        found = self._by_type[kind]
        assert isinstance(found, kind)
        return found

    def get(self, kind: type[T]) -> T | None:
        found = self._by_type.get(kind)
        return found if isinstance(found, kind) else None

    def items(self) -> Iterator[tuple[str, object]]:
        return iter(self._by_name.items())


class Reconciler(Protocol):
    name: ClassVar[str]
    after: ClassVar[tuple[str, ...]]
    observation: ClassVar[type]  # the dataclass `observe` returns; golden files are read into it

    def observe(self, spec: Spec, host: Host) -> Any:
        """Read the host. Never writes."""

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        """Pure: the changes that would bring the host to the spec."""

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        """Pure: what the plan must say that is not a change; an error note stops apply."""

    def apply(self, change: Change, host: Host) -> None:
        """Carry out one change from `diff` (or its undo), and nothing else."""


class Preparing(Protocol):
    """Optional: work that a reconciler's diff or check will need, done just before its
    observation with what the reconcilers before it observed, while its observation still
    waits on the host (the firewall's rule texts while a read started ahead runs on the other
    core). Pure and remembered: the diff then finds what it would have computed."""

    def prepare(self, spec: Spec, seen: Seen) -> None: ...


@dataclass(frozen=True)
class Glance:
    """What a cheap look at the host says about one reconciler's part of it (`Glancing`)."""

    token: object  # the state as seen now, to be passed back as `since`; None: cannot tell
    same: bool  # nothing it observes has changed since `since`
    exact: bool = True  # False: a change can leave the token as it was (a full read now and then)
    part: bool = False  # not the same: only what changed is read next


class Glancing(Protocol):
    """Optional, for `reconcile watch`: a reconciler whose observation is costly at scale (the
    firewall's 200,000 rules) says cheaply whether it can have changed.

    The watch passes the token of the last pass whose diff came out empty, when the spec and
    every observation made before this reconciler's are still what they were then (its diff
    and check read nothing else); `since` is None when a full read is wanted. The reconciler
    may then observe only what changed (`observe` after `glance`, and the verification after
    an apply, read that part)."""

    def listen(self, wake: Callable[[], None], stopping: Callable[[], bool]) -> None:
        """Start following the host's change announcements, if it has any; `wake()` on each."""

    def glance(self, spec: Spec, host: Host, since: object | None) -> Glance: ...

    def forget(self) -> None:
        """Drop what was kept for the verification after an apply (between two passes)."""
