"""Parsing resolv.conf tolerantly, as Docker 1.x's resolvconf package read it: a `#` starts a
comment anywhere on a line (`nameserver 1.2.3.4 # office` names 1.2.3.4), the last `search`
line wins, any number of nameservers; an address that does not parse is reported, never fatal.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

# Go's regexp `\s` (what Docker's patterns split on): space, tab, and the line controls.
_BLANKS = re.compile(r"[\t\n\f\r ]+")


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    other: tuple[str, ...] = ()  # lines dockyard does not interpret, kept without comments
    invalid: tuple[str, ...] = field(default=())  # "line N: nameserver foo"


def words(raw: str) -> list[str]:
    """A line's words once its comment is cut off (everything from the first `#`)."""
    return [w for w in _BLANKS.split(raw.partition("#")[0]) if w]


def parse(text: str) -> ResolvConf:
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    other: list[str] = []
    invalid: list[str] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = words(raw)
        if not line or line[0].startswith(";"):
            continue
        keyword, *values = line
        if keyword == "nameserver" and len(values) == 1:
            try:
                # A zone index (fe80::1%eth0) belongs to the host, not to the address.
                nameservers.append(str(ipaddress.ip_address(values[0].split("%")[0])))
            except ValueError:
                invalid.append(f"line {number}: {raw.strip()}")
        elif keyword == "nameserver":
            invalid.append(f"line {number}: {raw.strip()}")
        elif keyword in ("search", "domain"):
            # The last search or domain line wins, as in the resolver itself.
            search = values
        elif keyword == "options":
            options.extend(values)
        else:
            other.append(raw.partition("#")[0].strip())
    return ResolvConf(
        tuple(nameservers), tuple(search), tuple(options), tuple(other), tuple(invalid)
    )
