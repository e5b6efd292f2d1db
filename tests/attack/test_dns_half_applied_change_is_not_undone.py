"""dns writes resolv.conf, then resolv.conf.hash, in one change. When the second write is
refused (resolv.conf.hash became a hard link, a symlink, a FIFO after it was observed), the change
counted as not applied and was never undone: resolv.conf kept its new content while the run said
"nothing was changed" (found by a review of the first version). README: "an undo puts back the whole
content, mode and owner it replaced, or says what it could not put back"."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.reconcilers.dns import Dns
from tests.hostile_world import make_world


def test_a_refused_record_leaves_resolv_conf_as_it_was(tmp_path: Path, monkeypatch) -> None:
    world = make_world(tmp_path, legacy=False)
    assert world.run().ok
    resolv = world.root / "resolv.conf"
    before = resolv.read_bytes()
    (tmp_path / "etc" / "resolv.conf").write_text("nameserver 198.51.100.7\n")
    real = Dns.apply

    def apply(self, change, host):  # between observe and apply, the attacker hard-links
        record = world.root / "resolv.conf.hash"
        if not record.stat().st_nlink > 1:
            record.unlink()
            os.link(world.decoy / "precious", record)
        return real(self, change, host)

    monkeypatch.setattr(Dns, "apply", apply)
    outcome = world.run()
    assert not outcome.ok  # refused, as it should be
    # The change applies whole or not at all: resolv.conf is put back, so "nothing was
    # changed" is true.
    assert resolv.read_bytes() == before, resolv.read_text()
    assert "nothing was changed" in (outcome.error or "")
