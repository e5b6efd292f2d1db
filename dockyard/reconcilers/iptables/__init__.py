"""iptables: Docker 1.x's NAT and FORWARD rules, dockyard's published ports, owned by chain.

Rules dockyard writes into built-in chains carry a `dockyard:<hash>` comment; its DOCKYARD
chains are its own, every rule in them; the DOCKER chains are the daemon's and are only ever
created. Every other rule, in any other chain (DOCKER and DOCKER-USER included), is foreign and
is never deleted, rewritten or reordered.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError, PartiallyApplied
from dockyard.reconcilers.base import NETWORKING_DISABLED, Seen
from dockyard.reconcilers.bridge import BridgeObserved, bridge_subnet
from dockyard.reconcilers.iptables import backends, diff, rules, save
from dockyard.reconcilers.pidfile import PidFileObserved
from dockyard.spec import Spec
from dockyard.state.host import Host

WRITTEN = "iptables.written"  # in state_dir: touched before every commit of dockyard's


@dataclass(frozen=True)
class IptablesObserved:
    backend: str | None = None
    backend_reason: str = ""
    tables: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def choose_backend(spec: Spec, texts: dict[str, str], linked: str | None) -> tuple[str | None, str]:
    """Pure: the backend to use and why. `texts` holds each available backend's save output."""
    wanted = spec.network.iptables_backend
    if wanted != "auto":
        if wanted not in texts:
            return None, f"iptables-{wanted}-save is not installed"
        return wanted, "set in the spec"
    for name, text in texts.items():
        if f'--comment "{rules.TAG}' in text:
            return name, "it holds dockyard's rules"
    for name, text in texts.items():
        if _has_rules(text):
            return name, "it holds the host's rules"
    if linked in texts:
        return linked, f"the host's `iptables` uses {linked}"
    if texts:
        name = next(iter(texts))
        return name, f"only {name} is installed"
    return None, "neither iptables-legacy-save nor iptables-nft-save is installed"


def _has_rules(saved: str) -> bool:
    return saved.startswith("-A ") or "\n-A " in saved


def _chains(text: str) -> dict[str, dict[str, list[str]]]:
    parsed = save.parse(text)
    out = {}
    for table in rules.TABLES:
        found = parsed.get(table)
        chains = {c: [] for c in rules.BUILTIN[table]} if found is None else found.rules
        out[table] = chains
    return out


class Iptables:
    name: ClassVar[str] = "iptables"
    after: ClassVar[tuple[str, ...]] = ("bridge",)
    observation: ClassVar[type] = IptablesObserved

    def __init__(self) -> None:
        # The backend the last observation chose; apply writes where that plan was made.
        self.backend: str | None = None
        self.lock_timeout = 10.0
        self._memo: tuple[Spec, ipaddress.IPv4Network, rules.Wanted] | None = None

    def observe(self, spec: Spec, host: Host) -> IptablesObserved:
        try:
            return self._observe(spec, host.state_dir / WRITTEN)
        except DockyardError:
            if spec.network.bridge.disabled:
                # Networking is off: the rules are read only so that `down` can find old ones,
                # and a host where they cannot be read has nothing to say here.
                return IptablesObserved(None, "networking is disabled")
            raise

    def _observe(self, spec: Spec, written: Path) -> IptablesObserved:
        wanted: str = spec.network.iptables_backend
        candidates = list(backends.BACKENDS) if wanted == "auto" else [wanted]
        texts = {b: backends.save(b, written) for b in candidates if backends.available(b)}
        # Which backend `iptables` itself uses decides only between two empty ones.
        linked = None
        if wanted == "auto" and not any(_has_rules(text) for text in texts.values()):
            linked = backends.linked_backend()
        backend, reason = choose_backend(spec, texts, linked)
        self.backend, self.lock_timeout = backend, spec.network.iptables_lock_timeout
        if backend is None:
            return IptablesObserved(None, reason)
        return IptablesObserved(backend, reason, _chains(texts[backend]))

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        got = seen[IptablesObserved]
        if spec.network.bridge.disabled or got.backend is None:
            return []
        changes: list[Change] = []
        if not spec.network.iptables:
            for table in rules.TABLES:
                changes.extend(diff.remove(table, got.tables.get(table, {})))
            return changes
        subnet = bridge_subnet(spec, seen[BridgeObserved])
        if subnet is None:
            return []  # the bridge reconciler says why
        want = self._wanted(spec, subnet)
        daemon = seen.get(PidFileObserved)
        live = daemon is not None and daemon.alive
        for table in rules.TABLES:
            changes.extend(diff.install(table, got.tables.get(table, {}), want, live))
        return changes

    def _wanted(self, spec: Spec, subnet: ipaddress.IPv4Network) -> rules.Wanted:
        """Docker's rules for this spec. The verification pass after apply asks again with the
        same spec: 200,000 rules are built once per run, not twice."""
        if self._memo is None or self._memo[0] is not spec or self._memo[1] != subnet:
            self._memo = (spec, subnet, rules.wanted(spec, subnet))
        return self._memo[2]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        if spec.network.bridge.disabled:
            return [Note(self.name, "info", NETWORKING_DISABLED)]
        got = seen[IptablesObserved]
        if got.backend is None:
            return [Note(self.name, "error", f"no iptables backend: {got.backend_reason}")]
        notes = self._outside_the_subnet(spec, seen)
        if not spec.network.iptables:
            notes.append(
                Note(
                    self.name,
                    "info",
                    "network.iptables is false: dockyard installs no rules and removes its "
                    "own; foreign rules stay",
                )
            )
        return notes

    def _outside_the_subnet(self, spec: Spec, seen: Seen) -> list[Note]:
        """A container address outside the subnet the bridge has, or that `address: auto`
        chose, gets no traffic: an error, checked after the choice."""
        bridge = seen.get(BridgeObserved)
        subnet = bridge_subnet(spec, bridge) if bridge is not None else None
        if subnet is None or not spec.network.iptables:
            return []
        network, mask = int(subnet.network_address), int(subnet.netmask)
        addresses = {p["container_ip"] for p in spec.network.published_ports}
        outside = sorted((ip for ip in addresses if _as_int(ip) & mask != network), key=_as_int)
        if not outside:
            return []
        shown = ", ".join(outside[:5]) + (
            f" and {len(outside) - 5} more" if len(outside) > 5 else ""
        )
        return [
            Note(
                self.name,
                "error",
                f"network.published_ports: container_ip {shown} is outside {subnet}, the "
                f"subnet of {spec.network.bridge.name}; nothing is published",
            )
        ]

    def teardown(self, spec: Spec, seen: Seen) -> tuple[list[Change], list[Note]]:
        """`down`: every rule and chain of dockyard's goes; foreign ones stay."""
        got = seen[IptablesObserved]
        if got.backend is None:
            return [], []
        changes = [
            c._replace(reason=_why_down(c))
            for table in rules.TABLES
            for c in diff.remove(table, got.tables.get(table, {}))
        ]
        return changes, []

    def explain(self, spec: Spec, seen: Seen) -> dict[str, object]:
        got = seen[IptablesObserved]
        owned = sum(
            len(lines) if chain in rules.OWN_CHAINS[table] else _tagged(lines)
            for table, chains in got.tables.items()
            for chain, lines in chains.items()
        )
        return {"backend": got.backend, "because": got.backend_reason, "dockyard_rules": owned}

    def apply(self, change: Change, host: Host) -> None:
        self.apply_batch([change], host)

    def apply_batch(self, changes: Sequence[Change], host: Host) -> None:
        """One atomic commit per table; a table that fails leaves the earlier ones committed."""
        if self.backend is None:
            raise DockyardError("no iptables backend was observed")
        writer = backends.Restore(
            self.backend,
            backends.lock_path(host.environ),
            self.lock_timeout,
            written=host.state_dir / WRITTEN,
        )
        batches = {
            table: list(group)
            for table, group in groupby(changes, key=lambda c: c.name.split(" ", 1)[0])
        }
        committed, failed = writer.commit_all([(t, _commands(b)) for t, b in batches.items()])
        for error in failed:
            if not error.transient:
                continue
            try:  # another writer raced this commit: that table again, alone, with backoff
                _commit(writer, error.table, _commands(batches[error.table]))
                committed.append(error.table)
            except DockyardError:
                pass
        if set(committed) != set(batches):
            done = [c for table in committed for c in batches[table]]
            why = "; ".join(str(e) for e in failed if e.table not in committed)
            raise PartiallyApplied(why, done)


def _as_int(ip: str) -> int:
    return int.from_bytes(socket.inet_aton(ip), "big")


def _why_down(change: Change) -> str:
    """Why `down` removes it (the diff's reasons, "not in the spec", speak of converging)."""
    if change.kind == "chain" and change.name.endswith(f" {rules.USER_CHAIN}"):
        return "empty, and no rule but dockyard's jumps to it"
    return "owned by dockyard"


def _tagged(lines: list[str]) -> int:
    return sum(1 for line in lines if save.owned_tag(line) is not None)


def _commit(writer: backends.Restore, table: str, commands: list[str]) -> None:
    import tenacity

    for attempt in tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda e: isinstance(e, backends.CommitFailed) and e.transient
        ),
        stop=tenacity.stop_after_attempt(4),
        wait=tenacity.wait_exponential(multiplier=0.05, max=1.0),
        reraise=True,
    ):
        with attempt:
            writer.commit(table, commands)


def _commands(changes: Sequence[Change]) -> list[str]:
    out: list[str] = []
    for change in changes:
        if change.kind == "rules":
            out.extend(_rewrite_commands(change))
        else:
            out.append(_command(change))
    return out


def _rewrite_commands(change: Change) -> list[str]:
    """A bulk change to one of dockyard's chains, from its content before to its content after:
    only appends when the rules before all stay, else a flush and the whole chain again (one
    pass; a delete by rule text searches the chain from the top, once per rule)."""
    chain = change.name.split(" ", 1)[1]
    before: list[str] = (change.before or {}).get("lines", [])
    after: list[str] = (change.after or {}).get("lines", [])
    if after[: len(before)] == before:
        return [f"-A {chain} {line}" for line in after[len(before) :]]
    return [f"-F {chain}", *(f"-A {chain} {line}" for line in after)]


def _command(change: Change) -> str:
    _, chain, *rest = change.name.split(" ", 2)
    if change.kind == "chain":
        return f"-N {chain}" if change.action == "create" else f"-X {chain}"
    line = rest[0]
    if change.action == "delete":
        return f"-D {chain} {line}"
    position = (change.after or {}).get("position", "end")
    return f"-A {chain} {line}" if position == "end" else f"-I {chain} {position} {line}"
