"""iptables: Docker 1.x's NAT and FORWARD rules, dockyard's published ports, owned by chain.

Rules dockyard writes into built-in chains carry a `dockyard:<hash>` comment; its DOCKYARD
chains are its own, every rule in them; the DOCKER chains are the daemon's and are only ever
created. Every other rule, in any other chain (DOCKER and DOCKER-USER included), is foreign and
is never deleted, rewritten or reordered.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError, PartiallyApplied
from dockyard.reconcilers.base import NETWORKING_DISABLED, Glance, Seen
from dockyard.reconcilers.bridge import BridgeObserved, bridge_subnet
from dockyard.reconcilers.iptables import backends, diff, rules, save
from dockyard.reconcilers.pidfile import PidFileObserved
from dockyard.spec import Spec
from dockyard.spec.rules import all_within
from dockyard.state import netfilter, tables_ahead, tables_kept
from dockyard.state.host import Host

WRITTEN = "iptables.written"  # in state_dir: touched before every commit of dockyard's


@dataclass(frozen=True)
class IptablesObserved:
    backend: str | None = None
    backend_reason: str = ""
    tables: dict[str, dict[str, Sequence[str]]] = field(default_factory=dict)
    # Set when only some chains were read (a watch that knows what else is as it was):
    # table -> the chains read, those in `tables`.
    scope: dict[str, frozenset[str]] | None = None
    # Networking off, and a table the save cannot show whole (`Unreadable`): why `down`
    # cannot say what of dockyard's is left in it.
    unreadable: str = ""


@dataclass(frozen=True)
class Token:
    """The tables as a glance sees them: each legacy table's info (None: no ip_tables module)
    and the nf_tables generation (None: no nf_tables module); `unread` for a backend that is
    not a candidate."""

    legacy: object = "unread"
    nft: object = "unread"


NOTHING: dict[str, frozenset[str]] = {table: frozenset() for table in rules.TABLES}
CATCH_UP = 0.5  # seconds to wait for the event thread to have seen a generation announced


def choose_backend(spec: Spec, texts: dict[str, str], linked: str | None) -> tuple[str | None, str]:
    """Pure: the backend to use and why. `texts` holds each available backend's save output."""
    wanted = spec.network.iptables_backend
    if wanted != "auto":
        if wanted not in texts:
            return None, f"iptables-{wanted}-save is not installed"
        return wanted, "set in the spec"
    for name, text in texts.items():
        if save.holds_tags(text):
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


class Unreadable(DockyardError):
    """A table of dockyard's that the backend's save cannot show whole."""


def _refuse_unreadable(backend: str, text: str) -> None:
    """A table of dockyard's that the save could not show whole would be planned on what it
    left out: chains made again beside chains and rules no read can see, rules left behind by
    `down`, and a commit that succeeds taken as the state. Nothing is planned on it, and
    nothing is said to be left when networking is off."""
    unreadable = [t for t in save.incompatible(text) if t in rules.TABLES]
    if unreadable:
        names = ", ".join(f"ip {t}" for t in unreadable)
        raise Unreadable(
            f"iptables-{backend}-save cannot show the nf_tables table {names} whole: it holds "
            "rules or chains written with `nft` that iptables cannot express, and dockyard "
            "does not write beside what it cannot read; remove them with `nft`, or set "
            "network.iptables_backend: legacy"
        )


def _has_rules(saved: str) -> bool:
    return saved.startswith("-A ") or "\n-A " in saved


def _chains(text: str) -> dict[str, dict[str, Sequence[str]]]:
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
        self._memo: _Memo | None = None
        self._outside: tuple[Spec, ipaddress.IPv4Network | None, list[Note]] | None = None
        self._reason = ""
        # Set by `glance` (watch mode): the chains the next observations read; None: all.
        self._scope: dict[str, frozenset[str]] | None = None
        self._events: netfilter.Events | None = None
        self._listening: tuple[Callable[[], None], Callable[[], bool]] | None = None
        # The last observation that read every table, until a commit; and what the tables hold
        # after that commit, with their token then (`_expect`).
        self._read: tuple[Spec, IptablesObserved, Token] | None = None
        # The text of the last whole read on nf_tables: what a commit told is kept from
        # (`_expect`, tables_kept).
        self._text: str | None = None
        self._expected: tuple[object, IptablesObserved] | None = None

    def observe(self, spec: Spec, host: Host) -> IptablesObserved:
        expected = self._expected
        self._expected = self._read = self._text = None
        if expected is not None and self._unchanged_since(spec, expected[0]):
            return expected[1]
        try:
            got = self._observe(spec, host.state_dir / WRITTEN)
            whole = got.scope is None and got.backend is not None
            self._read = (spec, got, self._read_token(spec)) if whole else None
            return got
        except DockyardError as e:
            if spec.network.bridge.disabled:
                # Networking is off: the rules are read only so that `down` can find old ones,
                # and a host where they cannot be read has nothing to say here, but to `down`
                # when what it cannot read may hold dockyard's.
                unreadable = str(e) if isinstance(e, Unreadable) else ""
                return IptablesObserved(None, "networking is disabled", unreadable=unreadable)
            raise

    def prepare(self, spec: Spec, seen: Seen) -> None:
        """While a read started ahead still runs on the other core, the rules its result will
        be compared with, and the subnet check: at 100,000 ports 0.25 s that a no-op would
        otherwise spend after the read (base.Preparing)."""
        if not tables_ahead.still_reading():
            return
        bridge = seen.get(BridgeObserved)  # no subnet for `name: none`: nothing prepared
        subnet = bridge_subnet(spec, bridge) if bridge is not None else None
        if subnet is not None and spec.network.iptables:
            self._wanted(spec, subnet)
            self._outside_the_subnet(spec, seen)

    def _observe(self, spec: Spec, written: Path) -> IptablesObserved:
        if self._scope is not None and self.backend is not None:
            return self._observe_chains(self.backend, self._scope)
        wanted: str = spec.network.iptables_backend
        candidates = list(tables_ahead.BACKENDS) if wanted == "auto" else [wanted]
        texts = {b: backends.save(b, written) for b in candidates if tables_ahead.available(b)}
        # Which backend `iptables` itself uses decides only between two empty ones.
        linked = None
        if wanted == "auto" and not any(_has_rules(text) for text in texts.values()):
            linked = backends.linked_backend()
        backend, reason = choose_backend(spec, texts, linked)
        self.backend, self.lock_timeout = backend, spec.network.iptables_lock_timeout
        self._reason = reason
        if backend is None:
            return IptablesObserved(None, reason)
        if backend == "nft":  # iptables-legacy-save shows every table
            _refuse_unreadable(backend, texts[backend])
            self._text = texts[backend]
        return IptablesObserved(backend, reason, _chains(texts[backend]))

    def _observe_chains(self, backend: str, scope: dict[str, frozenset[str]]) -> IptablesObserved:
        """Only the chains in `scope`, each with `iptables -S CHAIN`; one that is missing is
        left out of `tables`, as a save would."""
        tables: dict[str, dict[str, Sequence[str]]] = {}
        for table, chains in scope.items():
            found = tables.setdefault(table, {})
            for chain in sorted(chains):
                text = backends.list_chain(backend, table, chain)
                if text is not None:
                    found[chain] = save.listed(text, chain)
        return IptablesObserved(backend, self._reason, tables, scope)

    def _unchanged_since(self, spec: Spec, token: object) -> bool:
        try:
            return self._token(spec) == token
        except OSError:
            return False

    def _expect(
        self,
        read: tuple[Spec, IptablesObserved, Token] | None,
        changes: Sequence[Change],
        tokens: tuple[object, object] | None,
        text: str | None = None,
    ) -> None:
        """After a commit of `changes` planned on `read`, what the next observation (the verify
        pass) would read back, when that follows from the read and the changes alone: the
        tables did not move between the read and the commit, the commit moved them by its own
        changes only (`moved_by`; both under the xtables lock), and the changes wrote rules
        and made chains, nothing else (`diff.committed`). Kept with the token after the
        commit, it is taken instead of reading every table again (at 100,000 published ports
        0.5-0.7 s) while the token stays. On nf_tables it is kept for later runs too, with
        the read's `text` for the other tables (tables_kept)."""
        if read is None or tokens is None:
            return
        _, got, at_read = read
        before, after = tokens
        if before != at_read or not moved_by(before, after, got.backend, changes):
            return
        tables = diff.committed(got.tables, changes)
        if tables is None:
            return
        self._expected = (after, IptablesObserved(got.backend, got.backend_reason, tables))
        clean = backends.read_clean("nft")  # the read `text` was: see there
        if got.backend == "nft" and text is not None and clean and isinstance(after, Token):
            made = functools.partial(save.with_tables, text, tables)
            tables_kept.put(after.nft, made, tables_ahead.RULE_BYTES)

    # Watch mode (base.Glancing).

    def listen(self, wake: Callable[[], None], stopping: Callable[[], bool]) -> None:
        """Follow nf_tables' announcements once its module is loaded (subscribing would load
        it: until then, each glance tries again); legacy xtables announces nothing."""
        self._listening = (wake, stopping)
        self._listen()

    def _listen(self) -> None:
        if self._listening is None or self._events is not None:
            return
        if tables_ahead.might_load_module("nf_tables"):
            return
        wake, stopping = self._listening
        events = netfilter.Events()

        def run() -> None:
            # However the listener ends (stopping, or a socket that failed), it is not started
            # again: without announcements each changed generation is read in full.
            with contextlib.suppress(OSError):
                netfilter.listen(events, wake, stopping)
            self._listening = None
            self._events = None

        self._events = events
        threading.Thread(target=run, name="nftables-events", daemon=True).start()

    def forget(self) -> None:
        """The rules of dockyard's own chains (200,000 texts at 100,000 ports) go; those of
        the built-in chains, a handful, stay for a watch pass that reads only those. So does
        the last whole read, kept for a commit in the same pass: a pass that commits reads
        again."""
        self._read = self._text = None
        memo = self._memo
        if memo is not None and memo.whole:
            kept = rules.Wanted(memo.wanted.builtin, {})
            self._memo = _Memo(memo.spec, memo.subnet, kept, whole=False)

    def glance(self, spec: Spec, host: Host, since: object | None) -> Glance:
        """The tables' token now, and whether anything dockyard reads can have changed since
        `since`: legacy tables compare by hooks, entry count and size (inexact: an edit in
        place keeps them); nf_tables by generation, and when it moved, by what the
        announcements say the commits touched (exact). Sets the scope of the observations
        that follow: nothing, some chains, or (None) everything."""
        self._scope = None
        self._expected = None  # told for a verify pass only: a new pass reads for itself
        self._listen()
        try:
            token = self._token(spec)
        except OSError:
            return Glance(None, same=False)
        if (
            not isinstance(since, Token)
            or self.backend is None
            or since.legacy != token.legacy
            or spec.network.bridge.disabled
        ):
            return Glance(token, same=False)
        scope = self._nft_changes(spec, since, token)
        if scope is None:
            return Glance(token, same=False)
        self._scope = scope
        if any(scope.values()):
            return Glance(token, same=False, part=True)
        return Glance(token, same=True, exact=self.backend == "nft")

    def _token(self, spec: Spec) -> Token:
        return Token(*(self._candidate(spec, b, tables_ahead.token) for b in tables_ahead.BACKENDS))

    def _read_token(self, spec: Spec) -> Token:
        """The tables' token from before the reads the last observation was made of."""
        return Token(
            *(self._candidate(spec, b, backends.read_token) for b in tables_ahead.BACKENDS)
        )

    @staticmethod
    def _candidate(spec: Spec, backend: str, token: Callable[[str], object]) -> object:
        wanted = spec.network.iptables_backend
        if wanted in ("auto", backend) and tables_ahead.available(backend):
            return token(backend)
        return "unread"

    def _nft_changes(
        self, spec: Spec, since: Token, token: Token
    ) -> dict[str, frozenset[str]] | None:
        """What changed in nf_tables between the two tokens, as chains to read (NOTHING when
        none of it matters here); None when that cannot be told and everything is read."""
        if since.nft == token.nft:
            return NOTHING
        events = self._events
        if not isinstance(since.nft, int) or not isinstance(token.nft, int) or events is None:
            return None
        touched = events.since(since.nft, token.nft, wait=CATCH_UP)
        if touched is None:
            return None
        ours = {t for t in touched if t.family in (netfilter.AF_INET, None)}
        if spec.network.iptables_backend == "nft":  # no choice to make: other tables do not matter
            ours = {t for t in ours if t.table in rules.TABLES or t.table is None}
        if not ours:
            return NOTHING
        if self.backend != "nft" or not spec.network.iptables:
            return None
        scope = {table: set[str]() for table in rules.TABLES}
        for t in ours:
            if t.table not in scope or t.chain is None:
                return None  # a whole table, or another table that decides the backend
            scope[t.table].add(t.chain)
        return {table: frozenset(chains) for table, chains in scope.items()}

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        got = seen[IptablesObserved]
        if spec.network.bridge.disabled or got.backend is None:
            return []
        changes: list[Change] = []
        if not spec.network.iptables:
            if got.scope is not None:
                return []  # only a watch that found nothing changed reads part of the tables
            for table in rules.TABLES:
                changes.extend(diff.remove(table, got.tables.get(table, {})))
            return changes
        if got.scope is not None and not any(got.scope.values()):
            return []  # nothing read: nothing changed since a pass that found nothing to do
        subnet = bridge_subnet(spec, seen[BridgeObserved])
        if subnet is None:
            return []  # the bridge reconciler says why
        want = self._wanted(spec, subnet, whole=_reads_own_chains(got.scope))
        daemon = seen.get(PidFileObserved)
        live = daemon is not None and daemon.alive
        for table in rules.TABLES:
            only = None if got.scope is None else got.scope.get(table, frozenset())
            if only is None or only:
                chains = got.tables.get(table, {})
                nft = got.backend == "nft"
                changes.extend(
                    diff.install(table, chains, want, live, only, deletes_read_chain=nft)
                )
        return changes

    def _wanted(
        self, spec: Spec, subnet: ipaddress.IPv4Network, whole: bool = True
    ) -> rules.Wanted:
        """Docker's rules for this spec. The verification pass after apply asks again with the
        same spec: 200,000 rules are built once per run, not twice. Without `whole`, the rules
        of dockyard's own chains may be missing (a watch dropped them; see `forget`)."""
        memo = self._memo
        if (
            memo is None
            or memo.spec is not spec
            or memo.subnet != subnet
            or (whole and not memo.whole)
        ):
            memo = self._memo = _Memo(spec, subnet, rules.wanted(spec, subnet), whole=True)
        return memo.wanted

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
        chose, gets no traffic: an error, checked after the choice. Asked again with the same
        spec and subnet (the verification after apply, every pass of a watch), the answer is
        the one already found: at 100,000 ports it takes 0.2 s."""
        bridge = seen.get(BridgeObserved)
        subnet = bridge_subnet(spec, bridge) if bridge is not None else None
        if subnet is None or not spec.network.iptables:
            return []
        memo = self._outside
        if memo is None or memo[0] is not spec or memo[1] != subnet:
            memo = self._outside = (spec, subnet, self._outside_of(spec, subnet))
        return list(memo[2])

    def _outside_of(self, spec: Spec, subnet: ipaddress.IPv4Network) -> list[Note]:
        addresses = {p["container_ip"] for p in spec.network.published_ports}
        if all_within(addresses, subnet):
            return []  # the usual case, in C; below, the addresses one by one
        network, mask = int(subnet.network_address), int(subnet.netmask)
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
        if got.unreadable:
            return [], [Note(self.name, "error", got.unreadable)]
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
        read, self._read, self._expected = self._read, None, None
        text, self._text = self._text, None
        if self.backend is None:
            raise DockyardError("no iptables backend was observed")
        writer = backends.Restore(
            self.backend,
            backends.lock_path(host.environ),
            self.lock_timeout,
            written=host.state_dir / WRITTEN,
            around=None if read is None else functools.partial(self._token, read[0]),
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
        if not failed:  # a table committed again after another writer's: read it back
            self._expect(read, changes, writer.tokens, text)


@dataclass(frozen=True)
class _Memo:
    spec: Spec
    subnet: ipaddress.IPv4Network
    wanted: rules.Wanted
    whole: bool  # False: `wanted.own` was dropped


def moved_by(before: object, after: object, backend: str | None, changes: Sequence[Change]) -> bool:
    """Pure: whether the tables' tokens before and after a commit (`Token`s, both under the
    xtables lock) show that commit of `changes` and nothing else: nf_tables one generation
    per table committed; legacy xtables each table's entry count moved by exactly the entries
    added and removed (an edit that keeps a count is not seen: legacy has no generation), a
    table the commit made counted from its built-in chains, the other backend unmoved."""
    if not isinstance(before, Token) or not isinstance(after, Token):
        return False
    tables = {c.name.split(" ", 1)[0] for c in changes}
    if backend == "nft":
        return (
            after.legacy == before.legacy
            and isinstance(before.nft, int)
            and after.nft == before.nft + len(tables)
        )
    if backend != "legacy" or after.nft != before.nft:
        return False
    if not isinstance(before.legacy, tuple) or not isinstance(after.legacy, tuple):
        return False
    was, now = dict(before.legacy), dict(after.legacy)
    if not was.keys() <= now.keys() or not now.keys() - was.keys() <= tables:
        return False
    added = diff.entries_added(changes)
    return all(
        (t not in was or now[t].valid_hooks == was[t].valid_hooks)
        and now[t].num_entries == _entries_before(was.get(t), now[t]) + added.get(t, 0)
        for t in now
    )


def _entries_before(was: netfilter.TableInfo | None, now: netfilter.TableInfo) -> int:
    """A table's entries before a commit; one the commit made had a policy per built-in chain
    (one per hook it is on) and the entry that ends the table."""
    return was.num_entries if was is not None else now.valid_hooks.bit_count() + 1


def _reads_own_chains(scope: dict[str, frozenset[str]] | None) -> bool:
    return scope is None or any(
        chain in rules.OWN_CHAINS[table] for table, chains in scope.items() for chain in chains
    )


def _as_int(ip: str) -> int:
    return int.from_bytes(socket.inet_aton(ip), "big")


def _why_down(change: Change) -> str:
    """Why `down` removes it (the diff's reasons, "not in the spec", speak of converging)."""
    if change.kind == "chain" and change.name.endswith(f" {rules.USER_CHAIN}"):
        return "empty, and no rule but dockyard's jumps to it"
    return "owned by dockyard"


def _tagged(lines: Sequence[str]) -> int:
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
        return _appends(chain, after[len(before) :])
    return [f"-F {chain}", *_appends(chain, after)]


def _appends(chain: str, lines: list[str]) -> list[str]:
    """`-A CHAIN line` for each line, as one block of text: one join in C instead of a string
    made per rule (100,000 of them at scale)."""
    if not lines:
        return []
    prefix = f"-A {chain} "
    return [prefix + ("\n" + prefix).join(lines)]


def _command(change: Change) -> str:
    _, chain, *rest = change.name.split(" ", 2)
    if change.kind == "chain":
        return f"-N {chain}" if change.action == "create" else f"-X {chain}"
    line = rest[0]
    if change.action == "delete":
        return f"-D {chain} {line}"
    position = (change.after or {}).get("position", "end")
    return f"-A {chain} {line}" if position == "end" else f"-I {chain} {position} {line}"
