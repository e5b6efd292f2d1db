"""dns: `<root>/resolv.conf`, the resolv.conf containers on the default bridge start from.

Derived as Docker's setupContainerDns did: from the host's resolv.conf without what a
container cannot reach (loopback resolvers; IPv6 ones unless the bridge has IPv6), falling back
to `dns.fallback`; once `dns.servers`, `search` or `options` is given, only nameserver, search
and options lines, each given one replacing the host's. A file a person has edited is left
alone: beside it, `resolv.conf.hash` records what dockyard wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dockyard.change import Change, Note
from dockyard.errors import DockyardError
from dockyard.reconcilers.base import Seen
from dockyard.spec import Spec
from dockyard.spec.types import NO_SEARCH
from dockyard.state import resolv, safepath
from dockyard.state.host import Host
from dockyard.state.safepath import Tree

TARGET = "resolv.conf"
RECORD = "resolv.conf.hash"
RESOLVED_STUB = "127.0.0.53"
GLIBC_MAX_NAMESERVERS = 3
MISSING = "no such file"  # why a host file that is not there cannot be read


@dataclass(frozen=True)
class DnsObserved:
    host_file: str
    host_text: str | None = None
    host_error: str | None = None
    resolved_file: str = ""
    resolved_text: str | None = None
    resolved_error: str | None = None
    target: str = ""
    current: str | None = None
    recorded_sha256: str | None = None
    current_mode: str | None = None
    current_owner: str | None = None


@dataclass(frozen=True)
class Derived:
    source: str  # where the nameservers came from
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    other: tuple[str, ...] = ()
    dropped: tuple[tuple[str, str], ...] = ()  # (nameserver, why)
    invalid: tuple[str, ...] = ()
    via_stub: bool = False
    fallback: bool = False
    error: str | None = None
    content: str = field(default="", compare=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _reachable(server: str, ipv6: bool) -> str | None:
    """Why a container cannot use `server`, or None when it can."""
    address = ipaddress.ip_address(server)
    if address.is_loopback:
        return "a loopback resolver is the host's own, out of a container's reach"
    if address.version == 6 and not ipv6:
        return "IPv6 is not enabled for the bridge (network.ipv6)"
    return None


def derive(spec: Spec, obs: DnsObserved) -> Derived:
    """Pure: what containers should get, and how it was arrived at.

    As Docker's setupContainerDns: with none of `dns.servers`, `search`, `options` given, the
    host's file less what containers cannot reach; with any of them given, a file of only
    nameserver, search and options lines, where each one given replaces the host's.
    """
    dns = spec.dns
    if dns.servers:
        return _from_servers(spec, obs)
    if obs.host_text is None:
        return Derived(source=obs.host_file, error=f"cannot read {obs.host_file}: {obs.host_error}")
    host = resolv.parse(obs.host_text)
    source, parsed, via_stub = obs.host_file, host, False
    if host.nameservers == (RESOLVED_STUB,):
        if obs.resolved_text is None:
            return Derived(
                source=obs.resolved_file,
                error=(
                    f"{obs.host_file} names only systemd-resolved's stub {RESOLVED_STUB}, and "
                    f"its upstream servers in {obs.resolved_file} cannot be read: "
                    f"{obs.resolved_error}; set dns.servers"
                ),
            )
        source, parsed, via_stub = obs.resolved_file, resolv.parse(obs.resolved_text), True
    kept, dropped = [], []
    for server in parsed.nameservers:
        why = _reachable(server, spec.network.ipv6)
        if why:
            dropped.append((server, why))
        else:
            kept.append(server)
    fallback = not kept
    derived = Derived(
        source=source,
        nameservers=tuple(kept) if kept else _fallback(spec),
        search=tuple(dns.search) or parsed.search,
        options=tuple(dns.options) or parsed.options,
        # Docker's Build, used once a flag is given, wrote nothing but these three kinds of line.
        other=() if dns.search or dns.options else parsed.other,
        dropped=tuple(dropped),
        invalid=parsed.invalid,
        via_stub=via_stub,
        fallback=fallback,
    )
    return render(derived)


def _from_servers(spec: Spec, obs: DnsObserved) -> Derived:
    """`dns.servers`, with the host's search domains and options unless the spec gives its own
    (Docker 1.6 read both from the host's file, libnetwork in 1.9 its options too)."""
    dns = spec.dns
    servers = tuple(str(s) for s in dns.servers)
    source = "dns.servers in the spec"
    if dns.search and dns.options:
        host = resolv.ResolvConf()  # nothing left for the host's file to give
    elif obs.host_text is not None:
        host = resolv.parse(obs.host_text)
    elif obs.host_error == MISSING:
        host = resolv.ResolvConf()  # no file: no search domains, no options, as for the resolver
    else:
        return Derived(
            source=obs.host_file,
            error=(
                f"cannot read {obs.host_file} for its search domains and options: {obs.host_error}"
            ),
        )
    search = tuple(dns.search) or host.search
    options = tuple(dns.options) or host.options
    if search != tuple(dns.search) or options != tuple(dns.options):
        source = f"{source} and {obs.host_file}"
    return render(Derived(source=source, nameservers=servers, search=search, options=options))


def _fallback(spec: Spec) -> tuple[str, ...]:
    """Docker's defaults when no nameserver is left: IPv4 ones, and IPv6 ones with IPv6 on."""
    ipv6 = spec.dns.fallback_ipv6 if spec.network.ipv6 else []
    return tuple(str(s) for s in (*spec.dns.fallback, *ipv6))


def render(d: Derived) -> Derived:
    lines = [
        f"# Generated by dockyard from {d.source} for containers on the default bridge.",
        "# Once edited by hand it is left alone; `reconcile --force-dns` writes it anew.",
        *(f"nameserver {s}" for s in d.nameservers),
    ]
    if d.search and d.search != (NO_SEARCH,):  # Docker writes no line for `.`
        lines.append("search " + " ".join(d.search))
    if d.options:
        lines.append("options " + " ".join(d.options))
    lines.extend(d.other)
    return dataclasses.replace(d, content="\n".join(lines) + "\n")


def _summary(text: str) -> dict[str, Any]:
    parsed = resolv.parse(text)
    return {
        "nameservers": list(parsed.nameservers),
        "search": list(parsed.search),
        "options": list(parsed.options),
    }


class Dns:
    name: ClassVar[str] = "dns"
    after: ClassVar[tuple[str, ...]] = ("directories",)
    observation: ClassVar[type] = DnsObserved

    def __init__(self, force: bool = False) -> None:
        self.force = force
        # The bytes behind a text observed with undecodable bytes (shown with U+FFFD): what an
        # undo writes back, so that it restores the file exactly.
        self._exact: dict[str, bytes] = {}

    def observe(self, spec: Spec, host: Host) -> DnsObserved:
        host_file = Path(spec.dns.host_resolv_conf)
        resolved_file = Path(spec.dns.resolved_conf)
        host_text, host_error = _read(host_file)
        resolved_text = resolved_error = None
        if host_text is not None and resolv.parse(host_text).nameservers == (RESOLVED_STUB,):
            resolved_text, resolved_error = _read(resolved_file)
        tree = host.fs
        found = tree.expect(TARGET, "file")
        raw = tree.read(TARGET) if found.kind == "file" else None
        current = _text(raw)
        if raw is not None and current is not None and current.encode() != raw:
            self._exact = {current: raw}
        tree.expect(RECORD, "file")
        recorded = _text(tree.read(RECORD))
        target = host.root / TARGET
        return DnsObserved(
            host_file=str(host_file),
            host_text=host_text,
            host_error=host_error,
            resolved_file=str(resolved_file),
            resolved_text=resolved_text,
            resolved_error=resolved_error,
            target=str(target),
            current=current,
            recorded_sha256=recorded.strip() if recorded else None,
            current_mode=found.octal if current is not None else None,
            current_owner=found.owner if current is not None else None,
        )

    def _forced(self, spec: Spec) -> bool:
        return self.force or spec.dns.force

    def edited_by_hand(self, obs: DnsObserved, want: Derived) -> bool:
        """The file is there, is not what dockyard would write, and is not what it last wrote."""
        return (
            obs.current is not None
            and obs.current != want.content
            and sha256(obs.current) != obs.recorded_sha256
        )

    def diff(self, spec: Spec, seen: Seen) -> list[Change]:
        obs = seen[DnsObserved]
        want = derive(spec, obs)
        if want.error:
            return []
        after = {**_summary(want.content), "content": want.content, "sha256": sha256(want.content)}
        if obs.current is None:
            return [Change(self.name, "file", obs.target, "create", None, after, "does not exist")]
        before = {
            **_summary(obs.current),
            "content": obs.current,
            "sha256": obs.recorded_sha256,
            "mode": obs.current_mode,
            "owner": obs.current_owner,
        }
        if obs.current == want.content:
            if obs.recorded_sha256 == after["sha256"]:
                return []
            reason = "the record of what dockyard wrote is missing"
        elif self.edited_by_hand(obs, want):
            if not self._forced(spec):
                return []
            reason = "edited by hand, rewritten as forced"
        else:
            reason = f"{want.source} changed"
        return [Change(self.name, "file", obs.target, "update", before, after, reason)]

    def check(self, spec: Spec, seen: Seen) -> list[Note]:
        obs = seen[DnsObserved]
        want = derive(spec, obs)
        if want.error:
            return [Note(self.name, "error", f"{want.error}; nothing written")]
        notes = [
            Note(self.name, "warning", f"{want.source}: {bad}: not an address, ignored")
            for bad in want.invalid
        ]
        if want.via_stub:
            notes.append(
                Note(
                    self.name,
                    "info",
                    f"{obs.host_file} names only systemd-resolved's stub {RESOLVED_STUB}: "
                    f"containers get its upstream servers from {obs.resolved_file}",
                )
            )
        if want.fallback:
            local = ", ".join(server for server, _ in want.dropped) or "none"
            fields = "dns.fallback and dns.fallback_ipv6" if spec.network.ipv6 else "dns.fallback"
            notes.append(
                Note(
                    self.name,
                    "warning",
                    f"no nameserver in {want.source} that containers can use (found: {local}); "
                    f"they get {fields}: {', '.join(want.nameservers)}",
                )
            )
        if len(want.nameservers) > GLIBC_MAX_NAMESERVERS:
            notes.append(
                Note(
                    self.name,
                    "info",
                    f"{len(want.nameservers)} nameservers: the C library in most containers uses "
                    f"the first {GLIBC_MAX_NAMESERVERS}",
                )
            )
        if self.edited_by_hand(obs, want) and not self._forced(spec):
            notes.append(
                Note(
                    self.name,
                    "warning",
                    f"{obs.target} was edited by hand, left alone "
                    "(reconcile --force-dns, or dns.force: true, writes it anew)",
                    drift=True,
                )
            )
        return notes

    def explain(self, spec: Spec, seen: Seen) -> dict[str, Any]:
        want = derive(spec, seen[DnsObserved])
        return {
            "from": want.source,
            "dropped": [{"nameserver": s, "why": why} for s, why in want.dropped],
            "nameservers": list(want.nameservers),
            "search": list(want.search),
            "options": list(want.options),
            "fallback": want.fallback,
            **({"error": want.error} if want.error else {}),
        }

    def apply(self, change: Change, host: Host) -> None:
        tree = host.fs
        if change.action == "delete":
            # The undo of a create in this run: only what dockyard wrote, if still that.
            before = change.before or {}
            tree.remove_file(TARGET, str(before["content"]).encode())
            tree.remove_file(RECORD, f"{before['sha256']}\n".encode())
            return
        after = change.after or {}
        mode = int(after.get("mode") or "0644", 8)  # an undo puts back the mode it found
        # The file first, then the record: a crash between leaves a file equal to what dockyard
        # wants, which the next run recognises and records, never a false "edited by hand".
        tree.write(TARGET, self._bytes(after["content"]), mode, after.get("owner"))
        try:
            if after.get("sha256"):
                tree.write(RECORD, f"{after['sha256']}\n".encode(), 0o644)
            else:
                tree.unlink(RECORD)
        except (OSError, DockyardError):
            self._put_back(tree, change)  # a change applies whole or not at all
            raise

    def _bytes(self, content: object) -> bytes:
        """The bytes of `content`: those observed behind it when it was read with undecodable
        bytes."""
        text = str(content)
        return self._exact.get(text) or text.encode()

    def _put_back(self, tree: Tree, change: Change) -> None:
        before = change.before
        if before is None:
            tree.remove_file(TARGET, str((change.after or {})["content"]).encode())
            return
        mode = int(before.get("mode") or "0644", 8)
        tree.write(TARGET, self._bytes(before["content"]), mode, before.get("owner"))


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode(errors="replace")


def _read(path: Path) -> tuple[str | None, str | None]:
    """A host file: its text, or why it cannot be read."""
    try:
        return safepath.read_file(path).decode(errors="replace"), None
    except FileNotFoundError:
        return None, MISSING
    except IsADirectoryError:
        return None, "is a directory"
    except DockyardError as e:
        return None, str(e).removeprefix(f"{path} ")
    except OSError as e:
        return None, (e.strerror or str(e)).lower()
