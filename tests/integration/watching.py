"""A `reconcile watch -o json` running in a sandbox, and what it reports: its events, and (with
`count_passes`) how many passes it has made, clean ones included (a clean pass logs no event).
Every wait is bounded."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.sandbox import Sandbox

PATIENCE = 30.0  # seconds: an upper bound on waiting, never an expectation
Event = dict[str, Any]


class Watcher:
    def __init__(self, box: Sandbox, *extra: str, count_passes: bool = False) -> None:
        self.box = box
        self.metrics_file: Path | None = None
        if count_passes:
            self.metrics_file = box.base / f"watch-{id(self)}.prom"
            extra = (*extra, "--metrics-file", str(self.metrics_file))
        argv = box.dockyard("watch", "SPEC", "-o", "json", "--interval", "1", *extra)
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **box.env},
        )
        self.events: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def wait_for(self, match: Callable[[Event], bool], what: str, since: int = 0) -> Event:
        """The first event from the `since`-th on that matches, waiting for it if need be."""
        deadline = time.monotonic() + PATIENCE
        for event in self.seen[since:]:
            if match(event):
                return event
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(event)
            if match(event):
                return event
        raise AssertionError(f"no {what}; events: {self.seen[-10:]}; stderr: {self.stderr()}")

    def ready(self) -> None:
        self.wait_for(lambda e: e["event"] == "ready", "ready event")

    def drained(self) -> list[Event]:
        """Every event so far, those not yet read included."""
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                return self.seen

    def passes(self) -> int:
        """How many passes the watch has finished (clean, applied or failed)."""
        assert self.metrics_file is not None, "start the Watcher with count_passes=True"
        try:
            text = self.metrics_file.read_text()
        except FileNotFoundError:
            return 0
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("dockyard_passes_total{")
        )

    def reads(self, how: str, reconciler: str = "iptables") -> int:
        """How many of the watch's observations of `reconciler` read everything ("full"),
        only what changed ("partial"), or nothing ("none": a glance said it was the same)."""
        assert self.metrics_file is not None, "start the Watcher with count_passes=True"
        try:
            text = self.metrics_file.read_text()
        except FileNotFoundError:
            return 0
        labels = f'dockyard_reads_total{{read="{how}",reconciler="{reconciler}"}} '
        found = [line for line in text.splitlines() if line.startswith(labels)]
        return int(float(found[0].rsplit(" ", 1)[1])) if found else 0

    def wait_passes(self, count: int) -> None:
        """Waits until `count` more passes have finished than when called: with count >= 2, at
        least one of them began after the call."""
        target = self.passes() + count
        deadline = time.monotonic() + PATIENCE
        while self.passes() < target:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.passes()} passes, waited for {target}; "
                    f"events: {self.drained()[-10:]}; stderr: {self.stderr()}"
                )
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=PATIENCE)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=PATIENCE)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


def corrective(resource: str) -> Callable[[Event], bool]:
    return lambda e: (
        e["event"] == "change" and e["kind"] == "corrective" and e["resource"] == resource
    )


def fights(events: list[Event]) -> list[Event]:
    """The events that say the watch corrected something, or failed a pass."""
    return [
        e
        for e in events
        if e["event"] == "error" or (e["event"] in ("change", "pass") and e["kind"] == "corrective")
    ]
