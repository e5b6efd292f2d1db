"""`reconcile watch`: converge, then keep converging.

An observe/diff pass every `--interval` (with ±10% jitter, so a fleet does not tick
together), and at once when netlink reports a change to links or addresses, or nf_tables a
commit. Legacy xtables and sysctls have no change events: the interval catches them. The
firewall is read in full only when a glance says it changed (shortcut.py), and on legacy
xtables every `--full-every` passes. Repairs of drift are logged as corrective changes,
changes that follow a new spec (at start, after SIGHUP) as intentional.
Drift that dockyard leaves alone (a resolv.conf edited by hand) is logged once when a pass
first finds it, and once when it clears: not at every pass.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import json
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any, cast

from dockyard import engine, lock, shortcut
from dockyard.change import Change, Note, Plan
from dockyard.errors import DockyardError, LockTimeout, SpecError
from dockyard.reconcilers import default_set
from dockyard.reconcilers.base import Reconciler
from dockyard.spec.resident import load_resident
from dockyard.state import tables_kept
from dockyard.state.host import Host

DEBOUNCE = 0.05  # seconds: one burst of netlink events, one pass
NETLINK_ROUTE, RTMGRP_LINK, RTMGRP_IPV4_IFADDR = 0, 0x1, 0x10
BACKOFF_CAP = 300.0
OWN_PIDFILE = lock.WATCH_PIDFILE  # in state_dir, while a watch runs


@dataclass
class Options:
    spec_path: str
    interval: float = 30.0
    output: str = "text"
    metrics_addr: str | None = None
    metrics_file: str | None = None
    force_dns: bool = False
    full_every: int = 10  # passes: legacy tables are read in full at least this often


@dataclass
class State:
    wake: threading.Event = field(default_factory=threading.Event)
    stopping: bool = False
    reload: bool = False
    interrupts: int = 0


class Log:
    """One line per event: text for people, or one JSON object per line."""

    def __init__(self, output: str) -> None:
        self.json = output == "json"

    def event(self, name: str, text: str, **data: Any) -> None:
        stamp = time.time()
        if self.json:
            doc = {"time": round(stamp, 3), "event": name, **data}
            print(json.dumps(doc, default=str), flush=True)
        else:
            clock = time.strftime("%H:%M:%S", time.localtime(stamp))
            print(f"{clock} {text}", flush=True)

    def change(self, kind: str, change: Change) -> None:
        details = "; ".join(_detail(change, a, o, n) for a, o, n in change.differences()[:4])
        text = f"{kind}: {change.symbol} {change.resource} ({change.reason})"
        self.event(
            "change", f"{text}  {details}" if details else text, kind=kind, **change.to_json()
        )


def drift_news(before: list[Note], now: list[Note]) -> tuple[list[Note], list[Note]]:
    """Pure: the drift found now and not by the last pass, and the drift gone since."""
    old = {(n.reconciler, n.message) for n in before}
    new = {(n.reconciler, n.message) for n in now}
    appeared = [n for n in now if (n.reconciler, n.message) not in old]
    return appeared, [n for n in before if (n.reconciler, n.message) not in new]


def _detail(change: Change, attr: str, old: Any, new: Any) -> str:
    if any(isinstance(v, str) and "\n" in v for v in (old, new)):
        return f"{attr} rewritten"
    if change.action == "create":
        return f"{attr}={new}"
    if change.action == "delete":
        return f"{attr}={old}"
    return f"{attr}: {old} -> {new}"


class Metrics:
    """Prometheus text format, served on an address and/or written for node-exporter."""

    def __init__(
        self, addr: str | None, path: str | None, on_error: Callable[[str], None] = print
    ) -> None:
        self.path = path
        self.on_error = on_error
        self.enabled = bool(addr or path)
        if not self.enabled:
            return
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # type: ignore[no-untyped-call] # no `_created` series: a counter's start time is noise

        self.registry = CollectorRegistry()
        r = self.registry
        self.passes = Counter("dockyard_passes", "Observe/diff passes", ["result"], registry=r)
        self.changes = Counter(
            "dockyard_changes", "Changes applied", ["reconciler", "kind"], registry=r
        )
        self.drift = Gauge("dockyard_drift", "Changes the last pass found pending", registry=r)
        self.errors = Counter("dockyard_errors", "Passes that failed", registry=r)
        self.duration = Histogram("dockyard_pass_duration_seconds", "Pass duration", registry=r)
        self.converged = Gauge(
            "dockyard_last_converged_timestamp_seconds",
            "When a pass last ended converged",
            registry=r,
        )
        self.reads = Counter(
            "dockyard_reads",
            "Observations of a reconciler that can glance first: full, partial or none",
            ["reconciler", "read"],
            registry=r,
        )
        self.server: Any = None
        if addr:
            from prometheus_client import start_http_server

            from dockyard.cli import host_and_port

            where = host_and_port(addr)
            if where is None:  # the command line checks it; a caller in Python may not
                raise DockyardError(f"--metrics-addr {addr}: not HOST:PORT")
            host, port = where
            try:
                self.server, _ = start_http_server(port, addr=host, registry=r)
            except OSError as e:
                raise DockyardError(f"--metrics-addr {addr}: {_cannot_listen(host, e)}") from None

    def record(
        self, the_plan: Plan, outcome: engine.Outcome | None, kind: str, took: float
    ) -> None:
        if not self.enabled:
            return
        ok = outcome is None or outcome.ok
        self.passes.labels(result="ok" if ok else "error").inc()
        self.duration.observe(took)
        self.drift.set(len(the_plan.changes) if not ok or outcome is None else 0)
        if outcome is not None:
            for c in outcome.applied:
                self.changes.labels(reconciler=c.reconciler, kind=kind).inc()
        if ok:
            self.converged.set_to_current_time()
        else:
            self.errors.inc()
        self.flush()

    def read(self, reconciler: str, how: str) -> None:
        if self.enabled:
            self.reads.labels(reconciler=reconciler, read=how).inc()

    def failed(self) -> None:
        if self.enabled:
            self.passes.labels(result="error").inc()
            self.errors.inc()
            self.flush()

    def flush(self) -> None:
        """Write the file; a failure is logged and the next pass tries again, never fatal
        (under systemd's Restart=on-failure a fatal one is a crash loop)."""
        if self.enabled and self.path:
            from prometheus_client import write_to_textfile

            try:
                write_to_textfile(self.path, self.registry)
            except OSError as e:
                self.on_error(
                    f"--metrics-file {self.path}: not written ({_why(e)}); next pass retries"
                )

    def close(self) -> None:
        if self.enabled and self.server is not None:
            self.server.shutdown()


def check_metrics_file(path: str | None) -> None:
    """At start, before anything converges: a missing or unwritable directory is one line."""
    if not path:
        return
    where = Path(path).parent
    if not where.is_dir():
        raise DockyardError(f"--metrics-file {path}: directory {where} does not exist")
    if not os.access(where, os.W_OK):
        raise DockyardError(f"--metrics-file {path}: directory {where} is not writable")


def _why(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def _cannot_listen(host: str, e: OSError) -> str:
    if isinstance(e, socket.gaierror):  # its filename is None: it used to end in ": None"
        return f"host {host!r} does not resolve ({e.strerror})"
    return f"cannot listen there: {e.strerror or e}"


def sd_notify(message: str) -> None:
    """systemd's readiness protocol: one datagram to $NOTIFY_SOCKET, when there is one."""
    where = os.environ.get("NOTIFY_SOCKET")
    if not where:
        return
    address = "\0" + where[1:] if where.startswith("@") else where
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), address)


def _listen(state: State, log: Log) -> None:
    """Wake the loop when links or addresses change (rtnetlink multicast). A bare socket:
    pyroute2 would hold 11 MB of the watch's memory for the same wake-ups."""
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        s.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
    except OSError as e:  # no events: the interval still catches everything
        log.event("warning", f"netlink events unavailable ({e}); polling only")
        return
    with s:
        while not state.stopping:
            try:
                if s.recv(1 << 16):
                    state.wake.set()
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    state.wake.set()  # events were lost: a full pass resynchronises
                    continue
                if state.stopping:
                    return
                time.sleep(1)


class Watch:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.log = Log(options.output)
        self.state = State()
        self.drift: list[Note] = []  # what the last pass found
        check_metrics_file(options.metrics_file)
        self.metrics = Metrics(
            options.metrics_addr,
            options.metrics_file,
            lambda why: self.log.event("warning", why, error=why),
        )
        self.shortcuts = shortcut.Shortcuts(options.full_every, self.metrics.read)

    def _signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.state.interrupts += 1 if signum == signal.SIGINT else 0
            if self.state.interrupts >= 2:
                os._exit(130)  # a second ^C: at once
            self.state.stopping = True
            self.state.wake.set()

        def reload(signum: int, frame: FrameType | None) -> None:
            self.state.reload = True
            self.state.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def run(self) -> int:
        spec = load_resident(self.options.spec_path)
        host = Host.for_spec(spec)
        reconcilers = engine.order(default_set(force_dns=self.options.force_dns))
        engine.prepare_state_dir(host)
        with lock.exclusive(Path(host.state_dir) / "lock", 0, hint=""):
            # The watch's own pid file; the spec's `pidfile` is Docker's and only observed.
            host.state.write(OWN_PIDFILE, self._own_pid, 0o644)
            self._signals()
            threading.Thread(target=_listen, args=(self.state, self.log), daemon=True).start()
            for r in reconcilers:
                listen = getattr(r, "listen", None)
                if listen is not None:
                    listen(self.state.wake.set, lambda: self.state.stopping)
            try:
                self._loop(spec, reconcilers)
            finally:
                self._shutdown(host)
        return 0

    @property
    def _own_pid(self) -> bytes:
        return f"{os.getpid()}\n".encode()

    def _loop(self, spec: Any, reconcilers: list[Reconciler]) -> None:
        import tenacity

        # Failing passes wait 1, 2, 4, ... seconds, up to BACKOFF_CAP, as tenacity computes it.
        wait = tenacity.wait_exponential(multiplier=1, min=1, max=BACKOFF_CAP)
        kind, backoff, failures, ready = "intentional", 0.0, 0, False
        while not self.state.stopping:
            self.state.wake.clear()
            try:
                ok = self._pass(spec, reconcilers, kind)
                backoff, failures = 0.0, 0
                if ok and not ready:
                    ready = True
                    sd_notify("READY=1")
                    self.log.event("ready", "converged; watching for drift")
            except (OSError, DockyardError) as e:
                failures += 1
                attempt = cast("tenacity.RetryCallState", SimpleNamespace(attempt_number=failures))
                backoff = float(wait(attempt))
                self.metrics.failed()
                self.log.event(
                    "error",
                    f"pass failed: {e}; next pass in {backoff:g}s",
                    error=str(e),
                    backoff=backoff,
                )
            kind = "corrective"
            self._wait(backoff)
            if self.state.reload and not self.state.stopping:
                self.state.reload = False
                new = self._reload()
                if new is not None:
                    spec, kind = new, "intentional"

    def _wait(self, backoff: float) -> None:
        interval = backoff or self.options.interval * random.uniform(0.9, 1.1)  # noqa: S311
        if self.state.wake.wait(interval) and not (self.state.stopping or self.state.reload):
            time.sleep(DEBOUNCE)  # let a burst of events settle into one pass

    def _reload(self) -> Any:
        try:
            new = load_resident(self.options.spec_path)
        except SpecError as e:
            for problem in e.problems:
                self.log.event(
                    "reload-error", f"SIGHUP: spec not reloaded: {problem}", error=problem
                )
            self.log.event("reload-error", "the spec in force stays", error="kept")
            return None
        self.log.event("reload", f"SIGHUP: {self.options.spec_path} reloaded")
        return new

    def _pass(self, spec: Any, reconcilers: list[Reconciler], kind: str) -> bool:
        try:
            return self._pass_once(spec, reconcilers, kind)
        finally:
            shortcut.forget(reconcilers)
            give_back_memory()

    def _pass_once(self, spec: Any, reconcilers: list[Reconciler], kind: str) -> bool:
        started = time.perf_counter()
        host = Host.for_spec(spec)
        seen = engine.observe(reconcilers, spec, host, self.shortcuts.hook(spec, host))
        the_plan = engine.plan(reconcilers, spec, seen)
        self.shortcuts.settle(the_plan, seen)
        self._log_drift(the_plan.drift)
        if not the_plan.changes and not the_plan.errors:
            self.metrics.record(the_plan, None, kind, time.perf_counter() - started)
            return True
        refused = engine.dependents({n.reconciler for n in the_plan.errors}, reconcilers)
        for change in the_plan.changes:
            if change.reconciler not in refused:
                self.log.change(kind, change)
        # A concern that fails stops only those that come after it; the others converge.
        outcome = engine.apply(the_plan, reconcilers, spec, host)
        took = time.perf_counter() - started
        self.metrics.record(the_plan, outcome, kind, took)
        if not outcome.ok:
            raise DockyardError(str(outcome.error))
        self.log.event(
            "pass",
            f"{kind}: {len(outcome.applied)} change(s) applied in {took:.2f}s",
            kind=kind,
            changes=len(outcome.applied),
            seconds=round(took, 3),
        )
        return True

    def _log_drift(self, now: list[Note]) -> None:
        appeared, cleared = drift_news(self.drift, now)
        for note in appeared:
            self.log.event("drift", f"drift: {note.reconciler}: {note.message}", **note.to_json())
        for note in cleared:
            text = f"drift cleared: {note.reconciler}: {note.message}"
            self.log.event("drift-cleared", text, **note.to_json())
        self.drift = now

    def _shutdown(self, host: Host) -> None:
        sd_notify("STOPPING=1")
        self.log.event("stopping", "stopping: removing the pid file, releasing the lock")
        with contextlib.suppress(OSError, DockyardError):
            host.state.remove_file(OWN_PIDFILE, self._own_pid)
        self.metrics.close()


def main(options: Options) -> int:
    gc.enable()  # off for a one-off run (process.run); a watch runs for good
    tables_kept.stop_keeping()
    try:
        return Watch(options).run()
    except LockTimeout as e:
        raise DockyardError(f"another reconcile runs: {e}") from None


def give_back_memory() -> None:
    """Return the heap a full pass left free to the system: reading 300,000 rules allocates
    about 200 MB that glibc keeps for the process unless asked (one call, a millisecond)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)
