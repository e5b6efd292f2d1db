"""Where dockyard keeps what it may compute again (a validated spec, a read of the tables):
`DOCKYARD_CACHE_DIR` (empty: keep nothing), else /var/cache/dockyard for root, else
$XDG_CACHE_HOME/dockyard. Light, for modules imported before the spec is read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.state import safepath

TABLES_NFT = "iptables-nft.tables"  # tables_kept.py's file


def directory() -> Path | None:
    configured = os.environ.get("DOCKYARD_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    if os.geteuid() == 0:
        return Path("/var/cache/dockyard")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "dockyard"


def private(entry: safepath.Entry, kind: str) -> bool:
    return (
        entry.kind == kind
        and entry.uid == os.geteuid()
        and not entry.mode & 0o077
        and (kind != "file" or entry.nlink == 1)
    )
