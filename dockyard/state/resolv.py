"""Parsing resolv.conf tolerantly: comments, blank lines, odd spacing, any number of
nameservers; an address that does not parse is reported, never fatal."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    other: tuple[str, ...] = ()  # lines dockyard does not interpret, kept as they are
    invalid: tuple[str, ...] = field(default=())  # "line N: nameserver foo"


def parse(text: str) -> ResolvConf:
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    other: list[str] = []
    invalid: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        keyword, *values = line.split()
        if keyword == "nameserver" and len(values) == 1:
            try:
                # A zone index (fe80::1%eth0) belongs to the host, not to the address.
                nameservers.append(str(ipaddress.ip_address(values[0].split("%")[0])))
            except ValueError:
                invalid.append(f"line {number}: {line}")
        elif keyword == "nameserver":
            invalid.append(f"line {number}: {line}")
        elif keyword in ("search", "domain"):
            # The last search or domain line wins, as in the resolver itself.
            search = values
        elif keyword == "options":
            options.extend(values)
        else:
            other.append(line)
    return ResolvConf(
        tuple(nameservers), tuple(search), tuple(options), tuple(other), tuple(invalid)
    )
