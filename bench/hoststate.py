"""The verify step of the peer bench: a host's state after a run, in a form two tools' runs
can be compared by.

What is compared, in the sandbox's namespace and under its root:
- every link: kind, MAC, MTU, up or not, its addresses (link-local ones left out: the kernel
  adds them on its own schedule); the bridge's MAC is dockyard's, derived from its name;
- `iptables-save`, `iptables-legacy-save` and `ip6tables-save` without their comments,
  counters and dates, and without the `-m comment --comment "dockyard:…"` tags dockyard puts
  on its rules to find them again (its ownership marks, not part of Docker's rules);
- net.ipv4.ip_forward;
- every file and directory under the root: type, mode, owner, group and content; the link
  graph as `sqlite3 .dump` prints it, `resolv.conf` without its comment lines (dockyard heads
  it with where it came from), and without `resolv.conf.hash`, dockyard's record of what it
  wrote there (so that a hand edit is left alone);
- whether the pid file is there, and that the host's resolv.conf is as it was.
dockyard's state directory (its ledger and lock) lies outside the root and is not compared.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

from devtools.sandbox import Sandbox

DOCKYARD_TAG = re.compile(r' -m comment --comment "?dockyard:[0-9a-f]+"?')
COUNTERS = re.compile(r"\[\d+:\d+\]")
RECORDS = {"resolv.conf.hash"}

State = dict[str, Any]


def _ns(box: Sandbox, *argv: str) -> str:
    return box.run(list(argv), check=True).stdout


def _rules(text: str) -> list[str]:
    return [
        COUNTERS.sub("[0:0]", DOCKYARD_TAG.sub("", line))
        for line in text.splitlines()
        if line and not line.startswith("#")
    ]


def _links(box: Sandbox) -> list[dict[str, Any]]:
    seen = json.loads(_ns(box, "ip", "-j", "-d", "addr", "show"))
    return sorted(
        (
            {
                "name": link["ifname"],
                "kind": link.get("linkinfo", {}).get("info_kind", link.get("link_type")),
                "mac": link.get("address"),
                "mtu": link["mtu"],
                "up": "UP" in link.get("flags", ()),
                "addresses": sorted(
                    f"{a['local']}/{a['prefixlen']}"
                    for a in link.get("addr_info", ())
                    if a.get("scope") != "link"
                ),
            }
            for link in seen
        ),
        key=lambda link: str(link["name"]),
    )


def _content(path: Path) -> str:
    if path.name == "linkgraph.db":
        return subprocess.run(
            ["sqlite3", "-readonly", str(path), ".dump"], capture_output=True, text=True, check=True
        ).stdout
    data = path.read_bytes()
    if path.name == "resolv.conf":
        return "".join(line for line in data.decode().splitlines(True) if not line.startswith("#"))
    return hashlib.sha256(data).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted([root, *root.rglob("*")]):
        relative = str(path.relative_to(root))
        if path.name in RECORDS:
            continue
        info = path.lstat()
        kind = stat.filemode(info.st_mode)
        entry = f"{kind} {info.st_uid}:{info.st_gid}"
        if stat.S_ISREG(info.st_mode):
            entry += f" {_content(path)}"
        found[relative] = entry
    return found


def snapshot(box: Sandbox) -> State:
    spec = box.spec
    resolv = Path(spec["dns"]["host_resolv_conf"])
    return {
        "links": _links(box),
        "iptables": _rules(_ns(box, "iptables-save")),
        "iptables-legacy": _rules(_ns(box, "iptables-legacy-save")),
        "ip6tables": _rules(_ns(box, "ip6tables-save")),
        "ip_forward": _ns(box, "sysctl", "-n", "net.ipv4.ip_forward").strip(),
        "root": _tree(Path(spec["root"])),
        "pidfile": Path(spec["pidfile"]).exists(),
        "host resolv.conf": resolv.read_text(),
    }


def differences(wanted: State, found: State) -> list[str]:
    """What `found` has that `wanted` does not, and the reverse, one line per difference."""
    out: list[str] = []
    for key in wanted.keys() | found.keys():
        a, b = wanted.get(key), found.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for name in sorted(a.keys() | b.keys()):
                if a.get(name) != b.get(name):
                    out.append(f"{key} {name}: wanted {a.get(name)!r}, found {b.get(name)!r}")
        elif isinstance(a, list) and isinstance(b, list):
            lines = [f"{key}: missing {item!r}" for item in a if item not in b]
            lines += [f"{key}: extra {item!r}" for item in b if item not in a]
            out += lines or [f"{key}: the same entries in another order"]
        else:
            out.append(f"{key}: wanted {a!r}, found {b!r}")
    return sorted(out)
