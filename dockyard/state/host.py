"""The machine a run acts on. Reconcilers reach the host only through this, so tests can point
it at a temporary root and a network namespace."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.spec import Spec
from dockyard.state.bootfacts import BootFacts
from dockyard.state.ledger import Ledger
from dockyard.state.safepath import Tree

LEDGER = "ledger.json"


@dataclass
class Host:
    root: Path
    state_dir: Path
    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # `reconcile show`: observe everything there is to tell, not only what a plan needs.
    thorough: bool = False
    _ledger: Ledger | None = None
    _boot_facts: BootFacts | None = None

    @classmethod
    def for_spec(cls, spec: Spec, proc: Path = Path("/proc")) -> Host:
        return cls(root=real_root(Path(spec.root)), state_dir=Path(spec.state_dir), proc=proc)

    @functools.cached_property
    def fs(self) -> Tree:
        """Docker's root: every path below it is reached without following a symlink, from
        one descriptor of the root for the whole run."""
        return Tree(self.root)

    @functools.cached_property
    def state(self) -> Tree:
        """dockyard's own directory (lock, ledger, stamps), reached the same way."""
        return Tree(self.state_dir)

    @property
    def ledger(self) -> Ledger:
        """Read on first use; a damaged one reads as empty and says so (`Ledger.damage`)."""
        if self._ledger is None:
            self._ledger = Ledger.load(self.state, LEDGER)
        return self._ledger

    def save_ledger(self) -> None:
        if self._ledger is not None:
            self._ledger.save()

    @property
    def boot_facts(self) -> BootFacts:
        """What probes found this boot (state/bootfacts.py), read on first use."""
        if self._boot_facts is None:
            self._boot_facts = BootFacts.load(self.state)
        return self._boot_facts

    def save_boot_facts(self) -> None:
        if self._boot_facts is not None:
            self._boot_facts.save()


def real_root(root: Path) -> Path:
    """Docker's rule: a root that exists is used through its real path (a symlink is resolved);
    one that does not exist yet, or a dangling link, is used as written."""
    try:
        return root.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError, RuntimeError):
        return root
