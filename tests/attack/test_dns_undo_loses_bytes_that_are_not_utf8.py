"""dns reads resolv.conf as text decoded with errors="replace", and the change carries that text:
an undo (or the put-back of a half-applied change) wrote back U+FFFD where the file had a byte
that is not UTF-8 (a Latin-1 comment, say). Issue 11: "Undo restores exactly what was there
(whole content, mode, owner)"."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.reconcilers.base import Seen
from dockyard.reconcilers.dns import Dns
from dockyard.spec import load
from dockyard.state.host import Host
from tests.hostile_world import make_world

OLD = b"# r\xe9seau du bureau\nnameserver 192.0.2.99\n"


def test_undo_puts_back_every_byte_of_a_resolv_conf_that_is_not_utf8(tmp_path: Path) -> None:
    world = make_world(tmp_path, legacy=False)
    world.root.mkdir()
    target = world.root / "resolv.conf"
    target.write_bytes(OLD)
    target.chmod(0o640)
    os.chown(target, 3, 4)
    spec = load(world.spec)
    host = Host.for_spec(spec)
    dns = Dns(force=True)
    seen = Seen()
    seen.add("dns", dns.observe(spec, host))
    (change,) = dns.diff(spec, seen)
    dns.apply(change, host)
    assert target.read_bytes() != OLD
    undo = change.undo()
    assert undo is not None
    dns.apply(undo, host)
    st = target.stat()
    assert (target.read_bytes(), st.st_mode & 0o777, st.st_uid, st.st_gid) == (OLD, 0o640, 3, 4)
